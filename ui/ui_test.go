package ui

import (
	"errors"
	"testing"
)

func TestColorMode(t *testing.T) {
	tests := []struct {
		name    string
		flag    string
		noColor bool
		env     map[string]string
		tty     bool
		want    bool
		wantErr bool
	}{
		{"auto on a terminal", "", false, nil, true, true, false},
		{"auto off a terminal", "", false, nil, false, false, false},
		{"NO_COLOR on a terminal", "", false, map[string]string{"NO_COLOR": "1"}, true, false, false},
		{"ARBO_FORCE_COLOR in Jenkins", "", false, map[string]string{"ARBO_FORCE_COLOR": "1"}, false, true, false},
		{"force beats NO_COLOR", "", false, map[string]string{"ARBO_FORCE_COLOR": "1", "NO_COLOR": "1"}, false, true, false},
		{"--color=never beats force", "never", false, map[string]string{"ARBO_FORCE_COLOR": "1"}, true, false, false},
		{"--no-color beats force", "", true, map[string]string{"ARBO_FORCE_COLOR": "1"}, true, false, false},
		{"--color=always off a terminal", "always", false, map[string]string{"NO_COLOR": "1"}, false, true, false},
		{"explicit --color=auto ignores force", "auto", false, map[string]string{"ARBO_FORCE_COLOR": "1"}, false, false, false},
		{"contradiction", "always", true, nil, true, false, true},
		{"bad value", "sometimes", false, nil, true, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := func(k string) string { return tt.env[k] }
			got, err := ColorMode(tt.flag, tt.noColor, env, tt.tty)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		codes []int
		want  int
	}{
		{nil, 0},
		{[]int{0, 2}, 2},
		{[]int{2, 3}, 3},
		{[]int{3, 4, 2}, 4},
		{[]int{2, 4, 1, 3}, 1},
	}
	for _, tt := range tests {
		if got := Worst(tt.codes...); got != tt.want {
			t.Errorf("Worst(%v) = %d, want %d", tt.codes, got, tt.want)
		}
	}
}

func TestCodeOf(t *testing.T) {
	if CodeOf(nil) != 0 || CodeOf(errors.New("x")) != 1 || CodeOf(Exit(3)) != 3 {
		t.Fatal("CodeOf does not map errors to codes")
	}
	wrapped := errors.Join(errors.New("ctx"), &StatusError{Code: 4})
	if CodeOf(wrapped) != 4 {
		t.Fatal("CodeOf does not see a wrapped ExitError")
	}
}

func TestStyle(t *testing.T) {
	if NewStyle(false).Red("x") != "x" {
		t.Error("plain style coloured")
	}
	if NewStyle(true).Red("x") != "\x1b[31mx\x1b[0m" {
		t.Error("colour style did not colour")
	}
}
