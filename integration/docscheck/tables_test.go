package docscheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var tableSeparator = regexp.MustCompile(`^\|(\s*:?-+:?\s*\|)+$`)

// cells is the number of cells of a table row (an escaped \| is text, not a border).
func cells(row string) int {
	return strings.Count(strings.ReplaceAll(strings.TrimSpace(row), `\|`, ""), "|") - 1
}

// tableProblems reports, for Markdown source src, each table whose header row is not followed
// by a separator row of as many cells (GitHub then shows the rows as plain text), and each row
// whose number of cells differs from the header's. Code blocks are skipped.
func tableProblems(src string) []string {
	var out []string
	lines := strings.Split(src, "\n")
	inCode, prevRow, header, headerAt := false, false, 0, -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "```") {
			inCode, prevRow = !inCode, false
			continue
		}
		row := !inCode && strings.HasPrefix(l, "|")
		switch {
		case row && !prevRow:
			header, headerAt = cells(l), i
			if i+1 >= len(lines) || !tableSeparator.MatchString(strings.TrimSpace(lines[i+1])) {
				out = append(out, fmt.Sprintf("line %d: a table without a separator row under its header", i+1))
			} else if n := cells(lines[i+1]); n != header {
				out = append(out, fmt.Sprintf("line %d: a separator of %d cells under a header of %d", i+2, n, header))
			}
		case row && i != headerAt+1 && cells(l) != header:
			out = append(out, fmt.Sprintf("line %d: %d cells in a table of %d", i+1, cells(l), header))
		}
		prevRow = row
	}
	return out
}

// TestDocumentTables: every table of the project's documents renders as a table.
func TestDocumentTables(t *testing.T) {
	for _, doc := range documents(t) {
		src, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, p := range tableProblems(string(src)) {
			t.Errorf("%s: %s", rel, p)
		}
	}
}

func TestTableProblems(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want int
	}{
		{"| a | b |\n|---|---|\n| 1 | 2 |\n", 0},
		{"| a | b |\n| 1 | 2 |\n", 1},                    // no separator
		{"| a | b |\n|---|\n| 1 | 2 |\n", 1},             // short separator
		{"| a | b |\n|---|---|\n| 1 | 2 | 3 |\n", 1},     // a row too long
		{"| a `x\\|y` | b |\n|:--|--:|\n| 1 | 2 |\n", 0}, // escaped bar, aligned columns
		{"```\n| not | a table\n```\n", 0},               // code block
		{"| a |\n|---|\n\n| b | c |\n| 1 | 2 |\n", 1},    // the second table
	} {
		if got := tableProblems(tc.src); len(got) != tc.want {
			t.Errorf("%q: %v, want %d problems", tc.src, got, tc.want)
		}
	}
}
