package main

import (
	"bytes"
	"io"
	"strings"
	"unicode"

	"golang.org/x/text/width"
)

// The CLI's tables (status, groups, invites, group settings, verify) align
// their columns as text/tabwriter does, cells ended by tabs, but measure a
// cell by how wide a terminal draws it: an East Asian wide or full-width
// character (山, Ｂ, most emoji) takes two columns and a combining mark
// none. text/tabwriter counts every rune as one, so a member named 山田太郎
// pushed the rest of its row out of line.

// tablePadding is the space after the widest cell of a column.
const tablePadding = 2

// table is an io.Writer that holds what is written until Flush, then
// writes it with its columns aligned: each line's tab-ended cells padded
// with spaces, column by column, over each block of consecutive lines that
// have a cell in that column (text/tabwriter's column blocks, with
// minwidth 0, padding 2 and spaces). What follows a line's last tab is not
// aligned.
type table struct {
	w   io.Writer
	buf bytes.Buffer
}

// newTable returns a table writing to w.
func newTable(w io.Writer) *table { return &table{w: w} }

func (t *table) Write(p []byte) (int, error) { return t.buf.Write(p) }

// Flush writes what was written, aligned, and empties the table.
func (t *table) Flush() error {
	text := t.buf.String()
	t.buf.Reset()
	if text == "" {
		return nil
	}
	lines := strings.Split(text, "\n")
	ended := strings.HasSuffix(text, "\n")
	if ended {
		lines = lines[:len(lines)-1]
	}
	rows := make([][]string, len(lines))
	for i, l := range lines {
		rows[i] = strings.Split(l, "\t")
	}
	var out strings.Builder
	alignColumns(&out, rows, nil, 0, len(rows))
	s := out.String()
	if !ended {
		s = strings.TrimSuffix(s, "\n")
	}
	_, err := io.WriteString(t.w, s)
	return err
}

// alignColumns writes rows[from:to], whose cells before column len(widths)
// are padded to widths: it finds the blocks of consecutive rows that have
// a tab-ended cell in the next column, and aligns each block's column to
// its widest cell, then the columns after it within the block.
func alignColumns(out *strings.Builder, rows [][]string, widths []int, from, to int) {
	col := len(widths)
	for i := from; i < to; i++ {
		if col >= len(rows[i])-1 {
			continue
		}
		writeRows(out, rows, widths, from, i)
		start := i
		w := 0
		for ; i < to && col < len(rows[i])-1; i++ {
			w = max(w, displayWidth(rows[i][col])+tablePadding)
		}
		alignColumns(out, rows, append(widths, w), start, i)
		from = i
		i-- // the loop's i++ comes back to the row that ended the block
	}
	writeRows(out, rows, widths, from, to)
}

// writeRows writes rows[from:to], each cell before column len(widths)
// padded to its width, the rest as they are, separated as written.
func writeRows(out *strings.Builder, rows [][]string, widths []int, from, to int) {
	for _, r := range rows[from:to] {
		for j, c := range r {
			out.WriteString(c)
			switch {
			case j < len(widths):
				out.WriteString(strings.Repeat(" ", max(widths[j]-displayWidth(c), 0)))
			case j < len(r)-1:
				out.WriteByte('\t')
			}
		}
		out.WriteByte('\n')
	}
}

// displayWidth is how many columns a terminal gives s: two for an East
// Asian wide or full-width character, none for a combining mark, a
// format character or a control, one for the others. An emoji is two
// however it is made: pictographs joined by zero-width joiners (👨‍👩‍👧),
// or one with the emoji presentation selector (❤️) or a skin tone (👍🏽),
// draw as one emoji, not as the sum of their parts.
func displayWidth(s string) int {
	n := 0
	cluster := 0        // the width of the character being drawn, with its marks
	pictograph := false // that character is an emoji's
	joining := false    // a zero-width joiner follows an emoji's pictograph
	for _, r := range s {
		switch {
		case joining && unicode.Is(unicode.So, r):
			// Joined to the emoji before it: no column of its own.
			joining = false
		case r == zwj:
			joining = pictograph
		case (r == emojiPresentation && cluster > 0) || (isSkinTone(r) && pictograph):
			// The emoji before it is drawn two wide, whatever its own
			// width (❤ alone is one, ❤️ two; 1️⃣ is a digit's).
			n += 2 - cluster
			cluster = 2
		case unicode.Is(unicode.Cc, r):
			cluster, pictograph, joining = 0, false, false
		case unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf):
			joining = false
		default:
			cluster = 1
			switch width.LookupRune(r).Kind() {
			case width.EastAsianWide, width.EastAsianFullwidth:
				cluster = 2
			}
			if isSkinTone(r) {
				cluster = 2 // not after an emoji: a swatch of its own
			}
			n += cluster
			pictograph = unicode.Is(unicode.So, r)
			joining = false
		}
	}
	return n
}

// Code points of emoji sequences (Unicode Technical Standard #51).
const (
	zwj               = '\u200d' // zero-width joiner: joins emoji into one (👩‍💻)
	emojiPresentation = '\ufe0f' // variation selector 16: draw as an emoji (❤️)
)

// isSkinTone reports whether r is an emoji skin tone modifier (🏻 to 🏿).
func isSkinTone(r rune) bool { return r >= 0x1f3fb && r <= 0x1f3ff }
