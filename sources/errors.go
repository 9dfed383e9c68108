package sources

import "errors"

// Errors that callers tell apart with errors.Is. Each is wrapped with the URL,
// directory, file or revision at fault.
var (
	// ErrBranchNotFound: the configured branch does not exist (bad input;
	// retrying will not help until the repository or the config changes).
	ErrBranchNotFound = errors.New("branch not found")
	// ErrPathNotFound: the configured path is not a directory in the revision.
	ErrPathNotFound = errors.New("path not found in revision")
	// ErrRevisionNotFound: a branch, tag or commit name resolved to nothing.
	ErrRevisionNotFound = errors.New("revision not found")

	// ErrNotPaused: Resume found no PAUSE marker to remove.
	ErrNotPaused = errors.New("not paused")
	// ErrRevertConflict: a reverted commit's change has been changed again
	// since, so its inverse cannot be applied as is.
	ErrRevertConflict = errors.New("revert conflict")
	// ErrDirtyWorktree: the clone has staged changes, or local changes to a
	// file a verb would write; committing would mix them in or lose them.
	ErrDirtyWorktree = errors.New("uncommitted changes in the worktree")
)
