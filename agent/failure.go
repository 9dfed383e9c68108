package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/policies"
	"github.com/gitpace/gitpace/sources"
	"github.com/gitpace/gitpace/state"
)

// A failed rollout is reported with the pods that keep it from finishing,
// and then handled as gitpace.yaml's onFailure says:
//
//   - hold (the default): the app stays Failed where it stands until a new
//     revision arrives;
//   - revert: the agent commits one `git revert` of the failed revision to
//     the branch and pushes it, once per failed revision (state.App.Reverts),
//     and does nothing else: the revert arrives like any commit and is
//     applied, as a rollback, by the normal loop. The agent never applies
//     anything that git does not say.
//
// Everything here runs on the loop goroutine (refreshPhase).

// revertTimeout bounds one clone, revert and push.
const revertTimeout = 2 * time.Minute

// failNote is what one failed rollout's failure is, looked up once per
// failure: id names the failure (a Deployment's revision, generation and
// deadline message; a BCS rollout's new application and cycle).
type failNote struct {
	id string
	// stale: the Deployment's ProgressDeadlineExceeded condition names a
	// ReplicaSet that is no longer the newest (it outlived a rollback).
	stale bool
	pods  []state.PodIssue
}

// failure returns the note of failure id of key, making it with look the
// first time that failure is seen.
func (a *Agent) failure(ctx context.Context, key, id string, look func(context.Context) (failNote, error)) failNote {
	a.mu.Lock()
	n, ok := a.failNotes[key]
	a.mu.Unlock()
	if ok && n.id == id {
		return n
	}
	n, err := look(ctx)
	if err != nil {
		a.cfg.Log.Warn("listing the pods of a failed rollout", "object", key, "err", err)
		return failNote{} // looked up again next time
	}
	n.id = id
	a.mu.Lock()
	a.failNotes[key] = n
	a.mu.Unlock()
	return n
}

// forgetFailure drops the note of a rollout that is no longer failed.
func (a *Agent) forgetFailure(key string) {
	a.mu.Lock()
	delete(a.failNotes, key)
	a.mu.Unlock()
}

// deploymentFailure looks at a Deployment whose rollout status says
// failed: the not-Ready pods of its newest ReplicaSet (pods matching its
// selector whose controller is the ReplicaSet carrying the Deployment's
// current deployment.kubernetes.io/revision). The failure is stale when
// the live Deployment is no longer past its deadline, or its deadline
// condition names another ReplicaSet than the newest, or a ReplicaSet
// already carries a newer revision: the controller keeps a
// ProgressDeadlineExceeded condition across a rollback to an existing
// ReplicaSet until that one makes progress. `kubectl rollout status`
// reports that as failed; gitpace does not.
func (a *Agent) deploymentFailure(ctx context.Context, ref appliers.ObjectRef, r appliers.DeploymentRollout) failNote {
	key := ref.Key()
	a.mu.Lock()
	seen := a.deadlines[key]
	a.mu.Unlock()
	id := fmt.Sprintf("%s/%d/%s", r.Revision, r.Generation, seen)
	return a.failure(ctx, key, id, func(ctx context.Context) (failNote, error) {
		d, err := a.kube.AppsV1().Deployments(ref.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err != nil {
			return failNote{}, err
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil {
			return failNote{}, err
		}
		opts := metav1.ListOptions{LabelSelector: sel.String()}
		rsl, err := a.kube.AppsV1().ReplicaSets(ref.Namespace).List(ctx, opts)
		if err != nil {
			return failNote{}, err
		}
		msg, failed := deadlineExceeded(d)
		if !failed {
			return failNote{stale: true}, nil // progress since the status the watch saw
		}
		rev, _ := strconv.Atoi(d.Annotations[revisionAnnotation])
		newest := map[string]bool{}
		for i := range rsl.Items {
			rs := &rsl.Items[i]
			if !metav1.IsControlledBy(rs, d) {
				continue
			}
			switch n, _ := strconv.Atoi(rs.Annotations[revisionAnnotation]); {
			case n > rev:
				return failNote{stale: true}, nil // the controller is moving to a newer ReplicaSet
			case n == rev:
				newest[string(rs.UID)] = true
				if strings.HasPrefix(msg, "ReplicaSet ") && !strings.Contains(msg, fmt.Sprintf("%q", rs.Name)) {
					return failNote{stale: true}, nil
				}
			}
		}
		pods, err := a.kube.CoreV1().Pods(ref.Namespace).List(ctx, opts)
		if err != nil {
			return failNote{}, err
		}
		return failNote{pods: notReadyPods(pods.Items, func(p *corev1.Pod) bool {
			owner := metav1.GetControllerOf(p)
			return owner != nil && newest[string(owner.UID)]
		})}, nil
	})
}

// deadlineExceeded returns the message of a Deployment's Progressing
// condition when its reason is ProgressDeadlineExceeded.
func deadlineExceeded(d *appsv1.Deployment) (string, bool) {
	c := progressing(d)
	if c == nil || c.Status != corev1.ConditionFalse || c.Reason != "ProgressDeadlineExceeded" {
		return "", false
	}
	return c.Message, true
}

// deadlineID names a Deployment's deadline condition: its message (the
// ReplicaSet that timed out) and when it was last set.
func deadlineID(d *appsv1.Deployment) (string, bool) {
	msg, ok := deadlineExceeded(d)
	if !ok {
		return "", false
	}
	return msg + " @" + progressing(d).LastUpdateTime.UTC().Format(time.RFC3339), true
}

func progressing(d *appsv1.Deployment) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if c := &d.Status.Conditions[i]; c.Type == appsv1.DeploymentProgressing {
			return c
		}
	}
	return nil
}

// progressMessage is `kubectl rollout status`'s wording for a rollout that
// is not past its deadline (see appliers.DeploymentStatus).
func progressMessage(r appliers.DeploymentRollout) string {
	switch {
	case r.UpToDate < r.Desired:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...", r.Name, r.UpToDate, r.Desired)
	case r.Current > r.UpToDate:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...", r.Name, r.Current-r.UpToDate)
	default:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...", r.Name, r.Available, r.UpToDate)
	}
}

const revisionAnnotation = "deployment.kubernetes.io/revision"

// bcsFailingPods lists the not-Ready pods of a suspended BCS rollout's new
// application.
func (a *Agent) bcsFailingPods(ctx context.Context, st *paced.Status) []state.PodIssue {
	if st.Rollout == "" {
		return nil
	}
	key := bcsRef(st.Namespace, st.Name).Key()
	id := fmt.Sprintf("%s/%d", st.Rollout, st.Cycle)
	return a.failure(ctx, key, id, func(ctx context.Context) (failNote, error) {
		sel := labels.Set{paced.LabelDeployment: st.Name, paced.LabelApplication: st.Rollout}.String()
		pods, err := a.kube.CoreV1().Pods(st.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		if err != nil {
			return failNote{}, err
		}
		return failNote{pods: notReadyPods(pods.Items, func(*corev1.Pod) bool { return true })}, nil
	}).pods
}

// notReadyPods returns the pods that match, are not being deleted and are
// not Ready, by name.
func notReadyPods(pods []corev1.Pod, match func(*corev1.Pod) bool) []state.PodIssue {
	var out []state.PodIssue
	for i := range pods {
		p := &pods[i]
		if p.DeletionTimestamp != nil || podIsReady(p) || !match(p) {
			continue
		}
		out = append(out, state.PodIssue{Name: p.Name, Reason: podProblem(p)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func podIsReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// podProblem says why a pod is not Ready, most specific first: a waiting or
// terminated container (ImagePullBackOff, CrashLoopBackOff), then the
// PodScheduled and Ready conditions, then the phase.
func podProblem(p *corev1.Pod) string {
	for _, cs := range append(p.Status.InitContainerStatuses[:len(p.Status.InitContainerStatuses):len(p.Status.InitContainerStatuses)], p.Status.ContainerStatuses...) {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && w.Reason != "PodInitializing" {
			return reasonText(w.Reason, w.Message)
		}
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			return reasonText(t.Reason, fmt.Sprintf("container %s exited with code %d", cs.Name, t.ExitCode))
		}
	}
	for _, typ := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodReady} {
		for _, c := range p.Status.Conditions {
			if c.Type == typ && c.Status != corev1.ConditionTrue {
				return reasonText(c.Reason, c.Message)
			}
		}
	}
	return string(p.Status.Phase)
}

// reasonText is "Reason: message" on one line, the message cut to 120 bytes.
func reasonText(reason, msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if len(msg) > 120 {
		msg = msg[:117] + "..."
	}
	switch {
	case reason == "":
		return msg
	case msg == "":
		return reason
	}
	return reason + ": " + msg
}

// maxNamed bounds the pod names a reason lists per problem.
const maxNamed = 3

// notReadyText is the suffix a failure reason gets: "; not Ready: a, b
// (ContainersNotReady: ...)", pods grouped by problem, on one line.
func notReadyText(pods []state.PodIssue) string {
	if len(pods) == 0 {
		return ""
	}
	var order []string
	byReason := map[string][]string{}
	for _, p := range pods {
		if _, ok := byReason[p.Reason]; !ok {
			order = append(order, p.Reason)
		}
		byReason[p.Reason] = append(byReason[p.Reason], p.Name)
	}
	parts := make([]string, 0, len(order))
	for _, reason := range order {
		names := byReason[reason]
		s := strings.Join(names[:min(len(names), maxNamed)], ", ")
		if len(names) > maxNamed {
			s += fmt.Sprintf(" and %d more", len(names)-maxNamed)
		}
		parts = append(parts, s+" ("+reason+")")
	}
	return "; not Ready: " + strings.Join(parts, "; ")
}

// failedEntry returns the history entry of the failed revision in force:
// the newest entry whose outcome is failed and whose templates are the
// ones in force.
func failedEntry(st *state.App) *state.Entry {
	for i := len(st.History) - 1; i >= 0; i-- {
		e := &st.History[i]
		if e.Outcome != state.FailedOut {
			continue
		}
		for k, h := range e.Templates {
			if st.Templates[k] != h {
				return nil
			}
		}
		return e
	}
	return nil
}

// handleFailure applies onFailure to an app whose rollout failed (st.Phase
// is Failed and st.Reason says why), adding what it did or why it holds to
// the reason.
func (a *Agent) handleFailure(ctx context.Context, st *state.App) {
	a.mu.Lock()
	policy := a.onFailure
	a.mu.Unlock()
	if policy != policies.FailureRevert {
		return // hold: stay where it is
	}
	e := failedEntry(st)
	if e == nil {
		return
	}
	failed := e.Revision.Commit
	note := func(s string) { st.Reason += "; onFailure revert: " + s }
	if r := st.RevertOf(failed); r != nil {
		note(fmt.Sprintf("%s was reverted by %s; holding", shortHash(failed), shortHash(r.Commit)))
		return
	}
	if e.RollbackTo > 0 {
		note(fmt.Sprintf("%s is itself a rollback, not reverted; holding", shortHash(failed)))
		return
	}
	if e.N == 1 {
		note(fmt.Sprintf("%s is the app's first revision, nothing to roll back to; holding", shortHash(failed)))
		return
	}
	a.mu.Lock()
	msg, ok := a.revertErrs[failed]
	a.mu.Unlock()
	if ok {
		note(fmt.Sprintf("reverting %s failed: %s; holding", shortHash(failed), msg))
		return
	}
	msg = fmt.Sprintf("gitpace onFailure: revert: app %s: revision %d (%s) failed: %s", st.Name, e.N, shortHash(failed), e.Message)
	ctx, cancel := context.WithTimeout(ctx, revertTimeout)
	defer cancel()
	rv := revertJob{failed: failed, base: failed, message: msg, appDir: path.Join(a.cfg.Source.Config().Path, st.Name)}
	for i := 1; i < len(st.History); i++ {
		if &st.History[i] == e {
			rv.base = st.History[i-1].Revision.Commit // the revision before: what to return to
		}
	}
	a.gitMu.Lock()
	commit, found, err := a.commitRevert(ctx, rv)
	a.gitMu.Unlock()
	if err != nil {
		a.mu.Lock()
		a.revertErrs[failed] = err.Error()
		a.mu.Unlock()
		a.printf("app %s: onFailure revert: reverting %s failed, holding: %v", st.Name, shortHash(failed), err)
		a.cfg.Log.Error("onFailure revert failed; holding", "app", st.Name, "failed", shortHash(failed), "err", err)
		note(fmt.Sprintf("reverting %s failed: %v; holding", shortHash(failed), err))
		return
	}
	st.AddRevert(state.Revert{Failed: failed, Commit: commit, Time: a.cfg.Now().UTC().Truncate(time.Second)})
	if found {
		a.printf("app %s: onFailure revert: %s is already reverted in git by %s", st.Name, shortHash(failed), shortHash(commit))
		a.cfg.Log.Info("failed revision already reverted in git", "app", st.Name, "failed", shortHash(failed), "revert", shortHash(commit))
	} else {
		a.printf("app %s: onFailure revert: committed %s reverting %s (revision %d) to branch %s", st.Name, shortHash(commit), shortHash(failed), e.N, a.cfg.Source.Config().Branch)
		a.cfg.Log.Info("committed a revert of the failed revision", "app", st.Name, "commit", commit, "reverts", failed)
	}
	note(fmt.Sprintf("%s reverted by %s; waiting for it", shortHash(failed), shortHash(commit)))
	a.Trigger() // fetch the revert at once
}

// revertJob is the revert of one failed revision: the commits after base
// up to failed (the revision's commit) that changed a file of the app's
// directory appDir: usually failed alone.
type revertJob struct {
	failed, base, appDir, message string
}

// commitRevert commits one revert of the failed revision's commits to the
// source's branch and pushes it: in a fresh clone (same URL and credentials
// as the source), or in place for a local repository with a worktree
// (pushing to its checked-out branch would leave the worktree behind). When
// the branch already holds a revert of them (another app's failure handler,
// or a revert pushed before a restart lost the state), it returns that
// commit with found set and commits nothing.
func (a *Agent) commitRevert(ctx context.Context, rv revertJob) (commit string, found bool, err error) {
	cfg := a.cfg.Source.Config()
	if a.cfg.Source.IsLocal() {
		if repo, err := git.PlainOpen(cfg.URL); err == nil {
			if _, err := repo.Worktree(); err == nil {
				return revertIn(ctx, cfg.URL, cfg, rv, false)
			}
		}
	}
	dir, err := os.MkdirTemp("", "gitpace-revert-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(dir)
	if err := sources.Clone(ctx, dir, cfg); err != nil {
		return "", false, err
	}
	return revertIn(ctx, dir, cfg, rv, true)
}

// revertIn reverts rv on cfg.Branch checked out in dir, then pushes it to
// origin when push is set.
func revertIn(ctx context.Context, dir string, cfg sources.GitConfig, rv revertJob, push bool) (string, bool, error) {
	repo, err := git.PlainOpen(dir)
	if err != nil {
		return "", false, err
	}
	head, err := repo.Head()
	if err != nil {
		return "", false, fmt.Errorf("%s: %w", dir, err)
	}
	if head.Name() != plumbing.NewBranchReferenceName(cfg.Branch) {
		return "", false, fmt.Errorf("%s has %s checked out, not branch %s", dir, head.Name().Short(), cfg.Branch)
	}
	commits, err := revisionCommits(repo, rv)
	if err != nil {
		return "", false, err
	}
	if prior, err := revertedBy(repo, head.Hash(), rv.failed, commits); err != nil || prior != "" {
		return prior, prior != "", err
	}
	commit, err := sources.Revert(dir, commits, rv.message)
	if err != nil {
		return "", false, err
	}
	if push {
		if err := sources.Push(ctx, dir, "origin", cfg.Auth); err != nil {
			return "", false, err
		}
	}
	return commit, false, nil
}

// revisionCommits lists, newest first, the commits after rv.base up to
// rv.failed that changed a file directly in rv.appDir (an app is the
// manifests directly in its directory); rv.failed alone when none did.
func revisionCommits(repo *git.Repository, rv revertJob) ([]string, error) {
	iter, err := repo.Log(&git.LogOptions{From: plumbing.NewHash(rv.failed)})
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", shortHash(rv.failed), err)
	}
	defer iter.Close()
	var out []string
	reached := false
	inApp := sources.InAppDir(rv.appDir)
	err = iter.ForEach(func(c *object.Commit) error {
		if c.Hash.String() == rv.base {
			reached = true
			return storer.ErrStop
		}
		if ok, err := sources.CommitTouches(c, inApp); err != nil || ok {
			if ok {
				out = append(out, c.Hash.String())
			}
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !reached {
		return nil, fmt.Errorf("commit %s (the revision before %s) is not in its history", shortHash(rv.base), shortHash(rv.failed))
	}
	if len(out) == 0 {
		out = []string{rv.failed}
	}
	return out, nil
}

// revertedBy walks the branch from head back to failed and returns the
// newest commit that says it reverts one of commits, or "". failed must be
// in the branch's history.
func revertedBy(repo *git.Repository, head plumbing.Hash, failed string, commits []string) (string, error) {
	iter, err := repo.Log(&git.LogOptions{From: head})
	if err != nil {
		return "", err
	}
	defer iter.Close()
	var by string
	reached := false
	err = iter.ForEach(func(c *object.Commit) error {
		if c.Hash.String() == failed {
			reached = true
			return storer.ErrStop
		}
		for _, h := range sources.ParseReverts(c.Message) {
			for _, x := range commits {
				if by == "" && strings.HasPrefix(x, h) {
					by = c.Hash.String()
				}
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if !reached {
		return "", errors.New("commit " + shortHash(failed) + " is not in the branch's history")
	}
	return by, nil
}

func shortHash(h string) string { return h[:min(len(h), 7)] }
