package node

import (
	"fmt"

	"github.com/rs/zerolog"
)

// raftLogger routes raft's logs to zerolog at debug level (raft is chatty).
type raftLogger struct{ l zerolog.Logger }

func (r raftLogger) Debug(v ...any)                 {}
func (r raftLogger) Debugf(format string, v ...any) {}
func (r raftLogger) Info(v ...any)                  { r.l.Debug().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Infof(format string, v ...any)  { r.l.Debug().Msgf(format, v...) }
func (r raftLogger) Warning(v ...any)               { r.l.Warn().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Warningf(format string, v ...any) {
	r.l.Warn().Msgf(format, v...)
}
func (r raftLogger) Error(v ...any)                 { r.l.Error().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Errorf(format string, v ...any) { r.l.Error().Msgf(format, v...) }
func (r raftLogger) Fatal(v ...any)                 { r.l.Fatal().Msg(fmt.Sprint(v...)) }
func (r raftLogger) Fatalf(format string, v ...any) { r.l.Fatal().Msgf(format, v...) }
func (r raftLogger) Panic(v ...any)                 { panic(fmt.Sprint(v...)) }
func (r raftLogger) Panicf(format string, v ...any) { panic(fmt.Sprintf(format, v...)) }
