// Package logsink collects what the plugin's packages log, for their tests.
package logsink

import (
	"fmt"
	"strings"
	"sync"
)

// Sink collects log lines as "LEVEL message"; it is safe for concurrent
// use.
type Sink struct {
	mu    sync.Mutex
	lines []string
}

// Log records msg at level; it is the packages' logger.
func (s *Sink) Log(level int, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, fmt.Sprintf("%d %s", level, msg))
}

// String returns the lines logged so far, one per line.
func (s *Sink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// Count returns how many times text occurs in the log.
func (s *Sink) Count(text string) int {
	return strings.Count(s.String(), text)
}

// Matching returns the lines that contain text.
func (s *Sink) Matching(text string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var lines []string
	for _, line := range s.lines {
		if strings.Contains(line, text) {
			lines = append(lines, line)
		}
	}
	return lines
}
