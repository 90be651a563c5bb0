package pipeline

import (
	"errors"

	"go.temporal.io/sdk/temporal"
)

// Types of final (non-retryable) activity errors. An activity returns one of these as a
// non-retryable application error when retrying cannot change the answer; every other
// error is retried by the activity's retry policy.
const (
	ErrTypeRefused        = "Refused"        // a rule says no; the message says why
	ErrTypeNotFound       = "NotFound"       // the message or environment does not exist
	ErrTypeLockHeld       = "LockHeld"       // another send/receive holds the lock
	ErrTypeDigipoortFinal = "DigipoortFinal" // Digipoort answered in a way retrying won't change
	ErrTypeInvalid        = "Invalid"        // bad input
)

// NonRetryable lists the error types retry policies must not retry.
var NonRetryable = []string{ErrTypeRefused, ErrTypeNotFound, ErrTypeLockHeld, ErrTypeDigipoortFinal, ErrTypeInvalid}

// RootMessage is what a person needs from an error that crossed Temporal: the words
// of the activity that failed (the message of the error directly under the innermost
// activity error, without the "activity error (type: …, scheduledEventID: …)" frames
// around it and without the causes Temporal appends), or else the message of the
// outermost application error, or else the error's text.
func RootMessage(err error) string {
	if err == nil {
		return ""
	}
	var inner *temporal.ActivityError
	for e := error(err); ; {
		var act *temporal.ActivityError
		if !errors.As(e, &act) {
			break
		}
		inner, e = act, act.Unwrap()
	}
	if inner != nil {
		cause := inner.Unwrap()
		var app *temporal.ApplicationError
		if errors.As(cause, &app) && error(app) == cause {
			return app.Message()
		}
		if cause != nil {
			return cause.Error()
		}
		return inner.Error()
	}
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}

// IsErrorType reports whether any application error in err's chain has that type: a
// workflow that wraps an activity's error puts its own application error in front.
func IsErrorType(err error, typ string) bool {
	for err != nil {
		var app *temporal.ApplicationError
		if !errors.As(err, &app) {
			return false
		}
		if app.Type() == typ {
			return true
		}
		err = errors.Unwrap(app)
	}
	return false
}
