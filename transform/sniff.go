package transform

import (
	"bytes"
	"fmt"
	"io"
	"strings"
)

// sniff looks at a file's first bytes for what is clearly not a text
// export - an image, a spreadsheet, a PDF, an archive, UTF-16 text - and
// says what it is, so the person who dropped it knows what to do instead
// of being told to change the encoding.
func sniff(head []byte) string {
	kinds := []struct {
		magic        []byte
		what, advice string
	}{
		{[]byte("\x89PNG\r\n\x1a\n"), "a PNG image", ""},
		{[]byte("\xff\xd8\xff"), "a JPEG image", ""},
		{[]byte("GIF8"), "a GIF image", ""},
		{[]byte("%PDF-"), "a PDF document", ""},
		{[]byte("PK\x03\x04"), "a ZIP archive", "an .xlsx or .docx file is one: export the data as CSV text instead"},
		{[]byte("\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"), "an old Office document", "an .xls or .doc file: export the data as CSV text instead"},
		{[]byte("\x1f\x8b"), "a gzip-compressed file", "uncompress it first"},
		{[]byte("\xff\xfe\x00\x00"), "UTF-32 text", utfAdvice},
		{[]byte("\xff\xfe"), "UTF-16 text", utfAdvice},
		{[]byte("\xfe\xff"), "UTF-16 text", utfAdvice},
	}
	for _, k := range kinds {
		if bytes.HasPrefix(head, k.magic) {
			s := k.what + ", not a text export izdrop reads"
			if k.advice != "" {
				s += " (" + k.advice + ")"
			}
			return s
		}
	}
	// UTF-16 without a byte-order mark: every other byte is zero.
	if len(head) >= 8 {
		zeros := bytes.Count(head, []byte{0})
		if zeros*3 >= len(head) {
			return "UTF-16 text or binary data (a third of its first bytes are zero), not a text export izdrop reads (" + utfAdvice + ")"
		}
	}
	if i := bytes.IndexByte(head, 0); i >= 0 {
		return fmt.Sprintf("binary data (a zero byte at offset %d), not a text export izdrop reads", i)
	}
	return ""
}

const utfAdvice = "save the export as UTF-8, or as Windows-1252 with encoding = \"windows-1252\" in its profile"

// lineEnds says how a file ends its lines, from its first bytes: "\r" for
// old Mac-style exports that use CR alone, "" otherwise.
func lineEnds(head []byte) string {
	if bytes.IndexByte(head, '\n') < 0 && bytes.IndexByte(head, '\r') >= 0 {
		return "\r"
	}
	return ""
}

// crReader turns every CR into LF, byte for byte (offsets do not move): a
// file whose lines end in CR alone reads as lines.
type crReader struct{ r io.Reader }

func (c crReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	for i := range p[:n] {
		if p[i] == '\r' {
			p[i] = '\n'
		}
	}
	return n, err
}

// suggestDelimiter names the delimiter a header row that reads as one
// column seems to use, if any.
func suggestDelimiter(header string, current rune) string {
	best, bestN := rune(0), 1
	for _, d := range []rune{',', ';', '|', '\t'} {
		if d == current {
			continue
		}
		if n := strings.Count(header, string(d)); n > bestN {
			best, bestN = d, n
		}
	}
	switch best {
	case 0:
		return ""
	case '\t':
		return `"\t" (tab)`
	}
	return fmt.Sprintf("%q", string(best))
}
