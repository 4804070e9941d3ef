package transform

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"io"
)

// csvReader reads CSV exactly as encoding/csv does with FieldsPerRecord -1,
// LazyQuotes and TrimLeadingSpace off (FuzzCSVReader holds it to that), but
// hands a record back as one string - every field's unquoted bytes, back to
// back - plus the field boundaries, instead of a []string. A Row then keeps
// that one string and small offsets into it, which is most of why a record
// costs a fraction of the memory (and GC work) a []string row would.
type csvReader struct {
	br      *bufio.Reader
	comma   byte
	numLine int
	offset  int64
	buf     []byte // the record's unquoted field bytes
	ends    []int  // end of each field in buf
	raw     []byte // a line longer than br's buffer
	// unclosed is set when the file ended inside a quoted field opened at
	// quoteLine, quoteCol: every line after it was read as that field.
	unclosed            bool
	quoteLine, quoteCol int
	quoteEnd            int // the last line read into the unclosed field
}

// csvRecord is one record: field i is s[ends[i-1]:ends[i]] (from 0 for the
// first). ends is reused by the next read.
type csvRecord struct {
	s          string
	ends       []int
	line       int   // first line of the record, 1-based
	start, end int64 // byte range in the input, blank lines before it included
}

func (r *csvRecord) field(i int) string {
	from := 0
	if i > 0 {
		from = r.ends[i-1]
	}
	return r.s[from:r.ends[i]]
}

func newCSVReader(in io.Reader, comma byte) *csvReader {
	return &csvReader{br: bufio.NewReaderSize(in, 64*1024), comma: comma}
}

// readLine returns the next line with its \n (\r\n normalised to \n; a
// final line without \n keeps none, and loses a trailing \r).
func (r *csvReader) readLine() ([]byte, error) {
	line, err := r.br.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		r.raw = append(r.raw[:0], line...)
		for err == bufio.ErrBufferFull {
			line, err = r.br.ReadSlice('\n')
			r.raw = append(r.raw, line...)
		}
		line = r.raw
	}
	n := len(line)
	if n > 0 && err == io.EOF {
		err = nil
		if line[n-1] == '\r' {
			line = line[:n-1]
		}
	}
	r.numLine++
	r.offset += int64(n)
	if n := len(line); n >= 2 && line[n-2] == '\r' && line[n-1] == '\n' {
		line[n-2] = '\n'
		line = line[:n-1]
	}
	return line, err
}

func lengthNL(b []byte) int {
	if len(b) > 0 && b[len(b)-1] == '\n' {
		return 1
	}
	return 0
}

// read returns the next record, io.EOF at the end, or a *csv.ParseError for
// a record that is not valid CSV - after which reading goes on with the next
// line, as with encoding/csv.
func (r *csvReader) read() (csvRecord, error) {
	start := r.offset
	var line []byte
	var errRead error
	for errRead == nil {
		line, errRead = r.readLine()
		if errRead == nil && len(line) == lengthNL(line) {
			line = nil
			continue // blank line
		}
		break
	}
	if errRead == io.EOF {
		return csvRecord{}, io.EOF
	}
	var err error
	recLine := r.numLine
	r.buf = r.buf[:0]
	r.ends = r.ends[:0]
	col, posLine := 1, r.numLine
	comma := r.comma
parseField:
	for {
		if len(line) == 0 || line[0] != '"' {
			// One scan to the delimiter or a quote: fields are short, and a
			// byte loop beats two IndexByte calls per field.
			i := 0
			for i < len(line) && line[i] != comma && line[i] != '"' {
				i++
			}
			if i < len(line) && line[i] == '"' {
				err = &csv.ParseError{StartLine: recLine, Line: r.numLine, Column: col + i, Err: csv.ErrBareQuote}
				break parseField
			}
			if i < len(line) {
				r.buf = append(r.buf, line[:i]...)
				r.ends = append(r.ends, len(r.buf))
				line = line[i+1:]
				col += i + 1
				continue parseField
			}
			r.buf = append(r.buf, line[:len(line)-lengthNL(line)]...)
			r.ends = append(r.ends, len(r.buf))
			break parseField
		}
		r.quoteLine, r.quoteCol = r.numLine, col
		line = line[1:]
		col++
		for {
			i := bytes.IndexByte(line, '"')
			switch {
			case i >= 0:
				r.buf = append(r.buf, line[:i]...)
				line = line[i+1:]
				col += i + 1
				switch {
				case len(line) > 0 && line[0] == '"':
					r.buf = append(r.buf, '"')
					line = line[1:]
					col++
				case len(line) > 0 && line[0] == comma:
					line = line[1:]
					col++
					r.ends = append(r.ends, len(r.buf))
					continue parseField
				case lengthNL(line) == len(line):
					r.ends = append(r.ends, len(r.buf))
					break parseField
				default:
					err = &csv.ParseError{StartLine: recLine, Line: r.numLine, Column: col - 1, Err: csv.ErrQuote}
					break parseField
				}
			case len(line) > 0:
				r.buf = append(r.buf, line...)
				if errRead != nil {
					break parseField
				}
				col += len(line)
				line, errRead = r.readLine()
				if len(line) > 0 {
					posLine++
					col = 1
				}
				if errRead == io.EOF {
					errRead = nil
				}
			default:
				if errRead == nil {
					err = &csv.ParseError{StartLine: recLine, Line: posLine, Column: col, Err: csv.ErrQuote}
					r.unclosed, r.quoteEnd = true, posLine
					break parseField
				}
				r.ends = append(r.ends, len(r.buf))
				break parseField
			}
		}
	}
	if err == nil {
		err = errRead
	}
	return csvRecord{s: string(r.buf), ends: r.ends, line: recLine, start: start, end: r.offset}, err
}
