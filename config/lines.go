package config

// The toml package keeps the position of each key private (and for arrays of
// tables keeps only the last one), so problems get their line numbers from
// this small scanner. It runs only on text that toml already parsed, walks
// the TOML structure (headers, dotted keys, strings, arrays, inline tables)
// and records the line where each key path first appears. It is lenient: on
// anything unexpected it stops, and the lines found so far are used.

// keyLines maps key paths (keyPath.String form) to 1-based line numbers.
type keyLines map[string]int

// lineOf returns the line of path, or of its nearest ancestor that has one
// (so a missing key points at its table's header), or 0.
func (kl keyLines) lineOf(p keyPath) int {
	for n := len(p); n > 0; n-- {
		if l, ok := kl[p[:n].String()]; ok {
			return l
		}
	}
	return 0
}

type lineScanner struct {
	s      string
	i      int
	line   int
	lines  keyLines
	arrays map[string]int // array-of-tables path → index of its last element
}

func scanKeyLines(text string) keyLines {
	sc := &lineScanner{s: text, line: 1, lines: keyLines{}, arrays: map[string]int{}}
	sc.document()
	return sc.lines
}

func (sc *lineScanner) eof() bool { return sc.i >= len(sc.s) }

func (sc *lineScanner) peek() byte {
	if sc.eof() {
		return 0
	}
	return sc.s[sc.i]
}

func (sc *lineScanner) hasPrefix(p string) bool {
	return len(sc.s)-sc.i >= len(p) && sc.s[sc.i:sc.i+len(p)] == p
}

func (sc *lineScanner) advance(n int) {
	for range n {
		if sc.eof() {
			return
		}
		if sc.s[sc.i] == '\n' {
			sc.line++
		}
		sc.i++
	}
}

// skipSpace skips blanks and, when newlines is set, line ends and comments.
func (sc *lineScanner) skipSpace(newlines bool) {
	for !sc.eof() {
		switch c := sc.peek(); {
		case c == ' ' || c == '\t' || c == '\r':
			sc.advance(1)
		case c == '\n' && newlines:
			sc.advance(1)
		case c == '#' && newlines:
			for !sc.eof() && sc.peek() != '\n' {
				sc.advance(1)
			}
		default:
			return
		}
	}
}

func (sc *lineScanner) record(p keyPath, line int) {
	k := p.String()
	if _, ok := sc.lines[k]; !ok {
		sc.lines[k] = line
	}
}

// resolve turns header key parts into a path, adding the current index of
// every array of tables along the way.
func (sc *lineScanner) resolve(parts []string) keyPath {
	var p keyPath
	for _, part := range parts {
		p = p.key(part)
		if n, ok := sc.arrays[p.String()]; ok {
			p = p.idx(n)
		}
	}
	return p
}

func (sc *lineScanner) document() {
	var table keyPath
	for {
		before := sc.i
		sc.skipSpace(true)
		if sc.eof() {
			return
		}
		line := sc.line
		switch {
		case sc.hasPrefix("[["):
			sc.advance(2)
			parts, ok := sc.key()
			if !ok || !sc.hasPrefix("]]") {
				return
			}
			sc.advance(2)
			parent := sc.resolve(parts[:len(parts)-1])
			arr := parent.key(parts[len(parts)-1])
			n, seen := sc.arrays[arr.String()]
			if seen {
				n++
			}
			sc.arrays[arr.String()] = n
			sc.record(arr, line)
			table = arr.idx(n)
			sc.record(table, line)
		case sc.peek() == '[':
			sc.advance(1)
			parts, ok := sc.key()
			if !ok || sc.peek() != ']' {
				return
			}
			sc.advance(1)
			table = sc.resolve(parts)
			sc.record(table, line)
		default:
			if !sc.keyValue(table) {
				return
			}
		}
		if sc.i == before {
			return // no progress: give up rather than loop
		}
	}
}

// keyValue reads `key = value` and records its lines.
func (sc *lineScanner) keyValue(table keyPath) bool {
	line := sc.line
	parts, ok := sc.key()
	if !ok || sc.peek() != '=' {
		return false
	}
	sc.advance(1)
	p := table
	for _, part := range parts {
		p = p.key(part)
		sc.record(p, line)
	}
	sc.skipSpace(false)
	return sc.value(p)
}

// key reads a dotted key and the blanks after it.
func (sc *lineScanner) key() ([]string, bool) {
	var parts []string
	for {
		sc.skipSpace(false)
		var part string
		switch c := sc.peek(); {
		case c == '"':
			s, ok := sc.basicString()
			if !ok {
				return nil, false
			}
			part = s
		case c == '\'':
			start := sc.i + 1
			sc.advance(1)
			for !sc.eof() && sc.peek() != '\'' && sc.peek() != '\n' {
				sc.advance(1)
			}
			if sc.peek() != '\'' {
				return nil, false
			}
			part = sc.s[start:sc.i]
			sc.advance(1)
		default:
			start := sc.i
			for !sc.eof() && isBare(sc.peek()) {
				sc.advance(1)
			}
			if sc.i == start {
				return nil, false
			}
			part = sc.s[start:sc.i]
		}
		parts = append(parts, part)
		sc.skipSpace(false)
		if sc.peek() != '.' {
			return parts, true
		}
		sc.advance(1)
	}
}

func isBare(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// basicString reads a one-line "..." string and returns its unescaped
// content, well enough for keys (common escapes; others kept as written).
func (sc *lineScanner) basicString() (string, bool) {
	sc.advance(1)
	var b []byte
	for !sc.eof() {
		c := sc.peek()
		switch c {
		case '"':
			sc.advance(1)
			return string(b), true
		case '\n':
			return "", false
		case '\\':
			sc.advance(1)
			e := sc.peek()
			switch e {
			case 'n':
				b = append(b, '\n')
			case 't':
				b = append(b, '\t')
			case '"', '\\':
				b = append(b, e)
			default:
				b = append(b, '\\', e)
			}
			sc.advance(1)
		default:
			b = append(b, c)
			sc.advance(1)
		}
	}
	return "", false
}

// value skips one value, recording the lines of array elements and of keys
// in inline tables under p.
func (sc *lineScanner) value(p keyPath) bool {
	switch {
	case sc.hasPrefix(`"""`):
		return sc.multiline(`"""`, true)
	case sc.hasPrefix(`'''`):
		return sc.multiline(`'''`, false)
	case sc.peek() == '"':
		_, ok := sc.basicString()
		return ok
	case sc.peek() == '\'':
		sc.advance(1)
		for !sc.eof() && sc.peek() != '\'' && sc.peek() != '\n' {
			sc.advance(1)
		}
		if sc.peek() != '\'' {
			return false
		}
		sc.advance(1)
		return true
	case sc.peek() == '[':
		sc.advance(1)
		for n := 0; ; n++ {
			sc.skipSpace(true)
			if sc.peek() == ']' {
				sc.advance(1)
				return true
			}
			sc.record(p.idx(n), sc.line)
			before := sc.i
			if !sc.value(p.idx(n)) || sc.i == before {
				return false
			}
			sc.skipSpace(true)
			if sc.peek() == ',' {
				sc.advance(1)
			}
		}
	case sc.peek() == '{':
		sc.advance(1)
		for {
			sc.skipSpace(true)
			switch sc.peek() {
			case '}':
				sc.advance(1)
				return true
			case ',':
				sc.advance(1)
				continue
			}
			before := sc.i
			if !sc.keyValue(p) || sc.i == before {
				return false
			}
		}
	default:
		// Number, boolean or date-time: up to a delimiter. A date-time may
		// hold one space ("1979-05-27 07:32:00Z"); trailing blanks are fine.
		start := sc.i
		for !sc.eof() {
			c := sc.peek()
			if c == ',' || c == ']' || c == '}' || c == '#' || c == '\n' {
				break
			}
			sc.advance(1)
		}
		return sc.i > start
	}
}

// multiline skips a multi-line string that starts at the cursor.
func (sc *lineScanner) multiline(delim string, escapes bool) bool {
	sc.advance(3)
	for !sc.eof() {
		if escapes && sc.peek() == '\\' {
			sc.advance(2)
			continue
		}
		if sc.hasPrefix(delim) {
			sc.advance(3)
			// Up to two more quotes belong to the content before the
			// closing delimiter.
			for range 2 {
				if sc.peek() == delim[0] {
					sc.advance(1)
				}
			}
			return true
		}
		sc.advance(1)
	}
	return false
}
