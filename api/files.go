package api

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Attachments (docs/PROTOCOL.md, "Attachments").
const (
	// RouteFiles: POST sends the request body as a file message and
	// answers the [Message] as a send does. The query names the file
	// (name=NAME) and may give its media type (type=TYPE, else the
	// Content-Type) and timeout_ms. The Content-Type must not be one an
	// HTML form can send (use application/octet-stream with type=). A
	// file over the node's limit is a 413.
	RouteFiles = Prefix + "/groups/" + groupIDPattern + "/files"
	// RouteFile: GET streams the decrypted file of the message named by
	// MessageIDVar: 200 with the file, or 409 with a [FileProgress]
	// while the node is still fetching it.
	RouteFile = RouteFiles + "/" + messageIDPattern
)

// ErrTooLarge: a file over the node's attachment limit (HTTP 413).
var ErrTooLarge = errors.New("file too large")

// NotReadyError is the answer to a download of a file the node is still
// fetching (HTTP 409 with a [FileProgress]).
type NotReadyError struct {
	Received, Size int64 // encrypted bytes so far, of how many
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("the file is still arriving (%d of %d bytes)", e.Received, e.Size)
}

// FileProgress is the 409 answer of [RouteFile]: an [ErrorResponse] with
// how many of the file's encrypted bytes arrived.
type FileProgress struct {
	Error    string `json:"error"`
	Hint     string `json:"hint,omitempty"`
	Received int64  `json:"received"`
	Size     int64  `json:"size"`
}

// FilePath is RouteFile for a group and a message.
func FilePath(groupID, messageID string) string {
	return strings.Replace(GroupPath(RouteFile, groupID), messageIDPattern, url.PathEscape(messageID), 1)
}
