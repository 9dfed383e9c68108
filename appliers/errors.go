package appliers

import (
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Bounds of SummarizeError's line, in characters (runes): one cause, and the
// whole line.
const (
	maxCauseLen   = 200
	maxSummaryLen = 360
	// maxEchoLen is the longest echoed value kept ("Invalid value: 99999").
	maxEchoLen = 40
)

// SummarizeError returns err as one short line for status, history and the
// agent's stdout: the file and object that ObjectError names, then, for an
// API error, its reason and each cause as "field: what is wrong" (from
// metav1.Status details), without the values the server echoes back (a
// rejected Job's "Invalid value: {...}" is the whole pod template, 3 KB).
// Joined errors are summarised one by one and joined with "; ". The line is
// at most maxSummaryLen characters ("…" marks a cut). Keep err.Error() for
// logs and `-o json`: it has the server's full text.
//
// It is the one place where error texts are shortened for people, so that
// scrubbing (e.g. of Secret values) can be added here once.
func SummarizeError(err error) string {
	if err == nil {
		return ""
	}
	return truncate(summarize(err), maxSummaryLen)
}

func summarize(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []string
		for _, e := range j.Unwrap() {
			if e != nil {
				parts = append(parts, summarize(e))
			}
		}
		return strings.Join(parts, "; ")
	}
	msg := err.Error()
	var st apierrors.APIStatus
	if errors.As(err, &st) {
		full := st.Status().Message
		if short := summarizeStatus(st.Status()); full != "" && strings.Contains(msg, full) {
			msg = strings.Replace(msg, full, short, 1)
		}
	}
	return strings.Join(strings.Fields(msg), " ") // one line
}

// summarizeStatus is "<reason>: <field>: <detail>; ..." for a Status with
// causes, else its message.
func summarizeStatus(s metav1.Status) string {
	if s.Details == nil || len(s.Details.Causes) == 0 {
		return s.Message
	}
	var causes []string
	for _, c := range s.Details.Causes {
		m := causeDetail(c.Message)
		if c.Field != "" && !strings.HasPrefix(m, c.Field) {
			m = c.Field + ": " + m
		}
		causes = append(causes, truncate(m, maxCauseLen))
	}
	reason := strings.ToLower(string(s.Reason))
	if reason == "" {
		reason = "refused"
	}
	return reason + ": " + strings.Join(causes, "; ")
}

// causeDetail drops a long echoed value of a field error: the apimachinery
// field.Error text is "Invalid value: <value>: <detail>" (the value can be a
// whole object); the detail is what follows its last ": ". A short value
// ("Invalid value: 99999") is kept.
func causeDetail(m string) string {
	const invalid = "Invalid value: "
	if strings.HasPrefix(m, invalid) {
		if i := strings.LastIndex(m, ": "); i >= len(invalid) && len([]rune(m[len(invalid):i])) > maxEchoLen {
			return m[i+2:]
		}
	}
	return m
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// ImmutableError is a change the API server refuses in place (a Job's
// template, a Deployment's selector, a headless Service's clusterIP) while
// the same object would be accepted as new: deleting and re-creating it is
// the way out, which the object opts into with RecreateAnnotation.
type ImmutableError struct {
	Err error
}

func (e *ImmutableError) Error() string {
	return fmt.Sprintf("%v (cannot change in place; to delete and re-create it, annotate it %s: \"true\" in git)", e.Err, RecreateAnnotation)
}

func (e *ImmutableError) Unwrap() error { return e.Err }

// IsTransient reports an error that a retry may cure (the API server or
// discovery unreachable, a timeout), as opposed to bad input: a kind the
// server does not serve (ErrUnknownKind), a schema error (IsSchemaError),
// or an API answer that is the same on every retry (NotFound, Forbidden,
// AlreadyExists, Conflict, MethodNotSupported, UnsupportedMediaType,
// RequestEntityTooLarge, NotAcceptable).
func IsTransient(err error) bool {
	if errors.Is(err, ErrUnknownKind) || IsSchemaError(err) {
		return false
	}
	switch {
	case apierrors.IsNotFound(err),
		apierrors.IsForbidden(err), apierrors.IsAlreadyExists(err), apierrors.IsConflict(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsUnsupportedMediaType(err),
		apierrors.IsRequestEntityTooLargeError(err), apierrors.IsNotAcceptable(err):
		return false
	}
	return true
}
