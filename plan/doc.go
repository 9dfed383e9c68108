// Package plan computes what merging a git revision would do, for reviewers
// of a pull request (`gitpace plan`): per app, the object diff against the
// live cluster (revision.Diff: server-side dry runs) and the rollout each change
// triggers.
//
//   - A native Deployment whose pod template changes rolls in the steps of
//     the Kubernetes Deployment controller (DeploymentSteps); one that is
//     created starts its pods at once; a replicas-only change scales.
//   - A BCS v4 deployment rolls in update cycles (BCSCycles), each with its
//     targets and earliest start: cycles are paced by upgradeDuration and
//     held by the app's sync windows, so the plan gives the earliest time
//     the rollout can finish.
//
// The rollout math is pure and table-tested; Make and Diff (the object diff
// alone, for `gitpace diff`) are the only parts that read git and the
// cluster, and they write nothing to either. The rollouts read the dry-run
// objects the diff carries (appliers.Change.Desired), never the diff text.
// Text renders a plan for a terminal, Markdown for a CI job to post on the
// pull request.
package plan
