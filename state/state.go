// Package state keeps what gitpace knows about each app in the cluster, so
// that a new agent process (or `gitpace status` on a laptop) knows it: the
// applied revision, the inventory of applied objects, the rollout state and
// the history of revisions. One ConfigMap per app in the state namespace.
package state

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/gitpace/gitpace/appliers"
	"github.com/gitpace/gitpace/appliers/health"
	"github.com/gitpace/gitpace/appliers/paced"
	"github.com/gitpace/gitpace/sources"
)

// DefaultNamespace is where state lives unless --state-namespace says otherwise.
const DefaultNamespace = "gitpace-system"

// Label on every state ConfigMap.
const (
	KindLabel = "gitpace.dev/state"
	// AgentLabel names the agent whose app a state ConfigMap records.
	AgentLabel = appliers.AgentLabel
	dataKey    = "app.json"
)

// Phase is an app's state as `gitpace status` shows it.
type Phase string

// The phases.
const (
	Synced      Phase = "Synced"
	OutOfSync   Phase = "OutOfSync"
	Progressing Phase = "Progressing"
	Paused      Phase = "Paused"
	Failed      Phase = "Failed"
	Held        Phase = "Held"
)

// Outcome of one revision in history.
type Outcome string

// The outcomes.
const (
	RollingOut Outcome = "rolling out"
	RolledOut  Outcome = "rolled out"
	RolledBack Outcome = "rolled back"
	FailedOut  Outcome = "failed"
	Superseded Outcome = "superseded"
	Rejected   Outcome = "rejected"
)

// App is the persisted state of one app.
type App struct {
	Name string `json:"name"`
	// Agent is the identity of the agent that reconciles the app (gitpace
	// run --name); "" for state written before agents had identities.
	Agent string `json:"agent,omitempty"`
	// Applied is the revision whose objects are in force: the commit that
	// made that content (agent/origin.go), not a later one that left it as
	// it is.
	Applied *sources.Revision `json:"applied,omitempty"`
	// ContentHash is the hash of the app's files at Applied; a newer commit
	// that leaves them unchanged needs no apply.
	ContentHash string               `json:"contentHash,omitempty"`
	Inventory   []appliers.ObjectRef `json:"inventory,omitempty"`
	// Templates maps a workload's ObjectRef.Key() to its TemplateHash at Applied.
	Templates map[string]string `json:"templates,omitempty"`
	// ChangeCauses maps a Deployment's key to the change-cause it carries.
	ChangeCauses map[string]string `json:"changeCauses,omitempty"`
	// Fingerprints maps an object's ObjectRef.Key() to its
	// appliers.Change.Fingerprint at the last apply: the next diff of an
	// object whose fingerprint holds makes no request.
	Fingerprints map[string]string `json:"fingerprints,omitempty"`
	Phase        Phase             `json:"phase"`
	Reason       string            `json:"reason,omitempty"`
	// Health is the second axis beside Phase (sync): how the app's live
	// objects are doing (appliers/health: Healthy, Suspended, Progressing,
	// Missing, Degraded, Unknown); "" in state written before gitpace
	// computed it. HealthReason names the worst object.
	Health       health.Health `json:"health,omitempty"`
	HealthReason string        `json:"healthReason,omitempty"`
	// Rejected is the newest revision that was refused, with why.
	Rejected *Rejection `json:"rejected,omitempty"`
	// PausedBy is the PAUSE marker's reason while the app is paused.
	PausedBy *string `json:"pausedBy,omitempty"`
	History  []Entry `json:"history,omitempty"`
	// BCS is the last status of each of the app\'s BCS v4 deployments: the
	// deployment line and its applications (bcs-client list -t app).
	BCS []paced.Status `json:"bcs,omitempty"`
	// FailingPods are the not-Ready pods of the rollout that failed (the
	// newest ReplicaSet of a Deployment past its progress deadline, or the
	// new application of a suspended BCS rollout); empty unless Failed.
	FailingPods []PodIssue `json:"failingPods,omitempty"`
	// Reverts are the revert commits the agent made under `onFailure:
	// revert`, oldest first: one per failed revision, so that a restarted
	// agent never reverts the same revision twice.
	Reverts []Revert `json:"reverts,omitempty"`
	// ReadyHash is the ContentHash at which the app was last Synced and
	// Healthy, and ReadyAt when it first was: a wave's interval is counted
	// from the ReadyAt of its last app (gitpace.yaml waves), so a
	// restarted agent waits what is left of it, no more, no less.
	ReadyHash string    `json:"readyHash,omitempty"`
	ReadyAt   time.Time `json:"readyAt,omitempty"`
	// PruneHeld says what of the app was not pruned while another app's
	// revision is invalid (nothing is pruned then); "" otherwise.
	PruneHeld string `json:"pruneHeld,omitempty"`
	// Conflict names the objects of the app that another agent declares
	// too and applied last, left to it until the next resync
	// (agent/shared.go); "" when the last diff found none.
	Conflict string `json:"conflict,omitempty"`
	// PruneLast: the objects the revision in force dropped are still in
	// Inventory, to be pruned once its rollouts have finished (the phase
	// Synced), as Argo CD's PruneLast: the old pods may still use them (a
	// configMapGenerator's previous ConfigMap). Set by an apply that
	// started a rollout; cleared by the prune.
	PruneLast bool `json:"pruneLast,omitempty"`
	// Wave is the app's wave (gitpace.yaml waves); nil when no wave
	// matches it.
	Wave *Wave `json:"wave,omitempty"`
	// Hooks is how the Helm hooks of the app's newest sync went (agent/hooks.go);
	// nil for apps without hooks.
	Hooks   *HookRun  `json:"hooks,omitempty"`
	Updated time.Time `json:"updated"`
}

// Wave is where an app stands in gitpace.yaml's waves.
type Wave struct {
	// Index is the app's wave, 1-based as `gitpace promote --wave N`
	// counts; Of is how many waves there are.
	Index int `json:"index"`
	Of    int `json:"of"`
	// Manual is set for a wave released by `gitpace promote --wave N`.
	Manual bool `json:"manual,omitempty"`
	// Rollout names the wave's current rollout (its apps at their newest
	// revisions): the approval `gitpace promote --wave N` commits for a
	// manual wave, so that an approval never releases a later rollout.
	Rollout string `json:"rollout,omitempty"`
	// NextAt is when the app's revision may start at the earliest, while
	// it waits for the interval of the wave before it.
	NextAt *time.Time `json:"nextAt,omitempty"`
}

// HookRun is one sync's run of an app's Helm hooks (Argo CD's PreSync and
// PostSync phases): the content it brings, the key its hook objects carry
// (agent's HookSyncAnnotation), and how each phase ended.
type HookRun struct {
	// ContentHash is the content (App.ContentHash) the sync brings.
	ContentHash string `json:"contentHash"`
	// Key identifies the sync: "<content in force before>..<ContentHash>".
	Key string `json:"key"`
	// PreSync and PostSync are "" until the phase ended, then
	// HookSucceeded or HookFailed.
	PreSync  HookOutcome `json:"preSync,omitempty"`
	PostSync HookOutcome `json:"postSync,omitempty"`
	// Reason names the hook that failed and why.
	Reason string `json:"reason,omitempty"`
}

// HookOutcome is how a hook phase ended.
type HookOutcome string

// Hook phase outcomes.
const (
	HookSucceeded HookOutcome = "Succeeded"
	HookFailed    HookOutcome = "Failed"
)

// PodIssue is a pod that is not Ready, and why (its waiting container's
// reason, or its Ready or PodScheduled condition).
type PodIssue struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Revert is a revert commit the agent pushed for a failed revision.
type Revert struct {
	// Failed is the commit of the revision whose rollout failed.
	Failed string `json:"failed"`
	// Commit is the revert commit.
	Commit string    `json:"commit"`
	Time   time.Time `json:"time"`
}

// RevertOf returns the revert recorded for the failed commit, or nil.
func (a *App) RevertOf(commit string) *Revert {
	for i := range a.Reverts {
		if a.Reverts[i].Failed == commit {
			return &a.Reverts[i]
		}
	}
	return nil
}

// AddRevert records a revert commit, keeping the newest MaxHistory.
func (a *App) AddRevert(r Revert) {
	a.Reverts = append(a.Reverts, r)
	if len(a.Reverts) > MaxHistory {
		a.Reverts = a.Reverts[len(a.Reverts)-MaxHistory:]
	}
}

// Rejection records a revision that was not applied.
type Rejection struct {
	Revision sources.Revision `json:"revision"`
	// Error is one short line (appliers.SummarizeError): file, object,
	// field and reason. Detail is the full text, as the server gave it.
	Error  string `json:"error"`
	Detail string `json:"detail,omitempty"`
	// AtApply: the server refused an object when applied, after a clean
	// dry run (an admission webhook or policy, a quota); what the attempt
	// had applied was undone. Also set for a failed PreSync hook
	// (agent/hooks.go), before which nothing of the revision was applied.
	// ContentHash identifies the refused content: it is tried again only
	// at a full resync or when it changes.
	AtApply     bool   `json:"atApply,omitempty"`
	ContentHash string `json:"contentHash,omitempty"`
}

// Entry is one revision of an app that gitpace applied.
type Entry struct {
	N        int              `json:"n"`
	Revision sources.Revision `json:"revision"`
	Applied  time.Time        `json:"applied"`
	Outcome  Outcome          `json:"outcome"`
	// RollbackTo is the history number whose templates this revision
	// restored (a git revert), 0 when it is not a rollback.
	RollbackTo int `json:"rollbackTo,omitempty"`
	// ContentHash is the app's content at this revision (App.ContentHash):
	// new content equal to an earlier entry's is a return to it (waves
	// do not hold it, as for a rollback).
	ContentHash string            `json:"contentHash,omitempty"`
	Templates   map[string]string `json:"templates,omitempty"`
	Message     string            `json:"message,omitempty"`
}

// MaxHistory bounds the stored history per app.
const MaxHistory = 50

// AddHistory appends an entry numbered after the last one, marking a
// still-rolling predecessor Superseded, and trims old entries.
func (a *App) AddHistory(e Entry) *Entry {
	if n := len(a.History); n > 0 {
		e.N = a.History[n-1].N + 1
		if a.History[n-1].Outcome == RollingOut {
			a.History[n-1].Outcome = Superseded
		}
	} else {
		e.N = 1
	}
	a.History = append(a.History, e)
	if len(a.History) > MaxHistory {
		a.History = a.History[len(a.History)-MaxHistory:]
	}
	return &a.History[len(a.History)-1]
}

// Last returns the newest history entry, or nil.
func (a *App) Last() *Entry {
	if len(a.History) == 0 {
		return nil
	}
	return &a.History[len(a.History)-1]
}

// Store reads and writes App state ConfigMaps. Save writes only when the
// state changed, so an idle agent makes no write requests.
type Store struct {
	cs        kubernetes.Interface
	Namespace string

	mu      sync.Mutex
	written map[string]saved // ConfigMap name → what was last written or read
}

// saved is a stored state without its timestamp, and the timestamp.
type saved struct {
	body    string
	updated time.Time
}

// unstamped is a's JSON without Updated: two states that differ only in
// when they were saved are the same state.
func unstamped(a *App) (string, error) {
	cp := *a
	cp.Updated = time.Time{}
	b, err := json.Marshal(&cp)
	return string(b), err
}

// NewStore returns a Store in namespace ns (DefaultNamespace when empty).
func NewStore(cs kubernetes.Interface, ns string) *Store {
	if ns == "" {
		ns = DefaultNamespace
	}
	return &Store{cs: cs, Namespace: ns, written: map[string]saved{}}
}

// ConfigMapName is the state ConfigMap of an agent's app: readable and
// collision-free across agents sharing a state namespace. agent "" gives
// the name used before agents had identities.
func ConfigMapName(agent, app string) string {
	s := strings.Map(func(r rune) rune {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, app)
	if len(s) > 40 {
		s = s[:40]
	}
	key := app
	if agent != "" {
		key = agent + "\x00" + app
	}
	sum := sha256.Sum256([]byte(key))
	return "app-" + strings.Trim(s, "-") + "-" + hex.EncodeToString(sum[:4])
}

// EnsureNamespace creates the state namespace if it is missing.
func (s *Store) EnsureNamespace(ctx context.Context) error {
	_, err := s.cs.CoreV1().Namespaces().Get(ctx, s.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = s.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: s.Namespace}}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("state namespace %s: %w", s.Namespace, err)
	}
	return nil
}

// List returns the state of every app of every agent in the namespace,
// sorted by agent, then app.
func (s *Store) List(ctx context.Context) ([]*App, error) {
	list, err := s.cs.CoreV1().ConfigMaps(s.Namespace).List(ctx, metav1.ListOptions{LabelSelector: KindLabel + "=app"})
	if err != nil {
		return nil, fmt.Errorf("reading app state from namespace %s: %w", s.Namespace, err)
	}
	var out []*App
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, cm := range list.Items {
		var a App
		if err := json.Unmarshal([]byte(cm.Data[dataKey]), &a); err != nil {
			return nil, fmt.Errorf("ConfigMap %s/%s: %w", s.Namespace, cm.Name, err)
		}
		body, _ := unstamped(&a)
		s.written[cm.Name] = saved{body, a.Updated}
		out = append(out, &a)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Name < out[j].Name
	})
	return out, nil
}

// Get returns agent's app's state (nil, nil when there is none).
func (s *Store) Get(ctx context.Context, agent, app string) (*App, error) {
	cm, err := s.cs.CoreV1().ConfigMaps(s.Namespace).Get(ctx, ConfigMapName(agent, app), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var a App
	if err := json.Unmarshal([]byte(cm.Data[dataKey]), &a); err != nil {
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", s.Namespace, cm.Name, err)
	}
	return &a, nil
}

// Find returns the state of the app named app, whichever agent has it
// (nil, nil when none has; an error when several agents have one).
func (s *Store) Find(ctx context.Context, app string) (*App, error) {
	all, err := s.List(ctx)
	if err != nil {
		return nil, err
	}
	var found *App
	for _, a := range all {
		if a.Name != app {
			continue
		}
		if found != nil {
			return nil, fmt.Errorf("app %q exists for agents %s and %s", app, found.Agent, a.Agent)
		}
		found = a
	}
	return found, nil
}

// Save writes a's state when it differs from what was last read or written,
// Updated aside: when nothing else changed it writes nothing and gives a
// back the stored Updated.
func (s *Store) Save(ctx context.Context, a *App) error {
	body, err := unstamped(a)
	if err != nil {
		return err
	}
	name := ConfigMapName(a.Agent, a.Name)
	s.mu.Lock()
	prev, ok := s.written[name]
	s.mu.Unlock()
	if ok && prev.body == body {
		a.Updated = prev.updated
		return nil
	}
	b, err := json.Marshal(a)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.Namespace,
			Labels:      map[string]string{KindLabel: "app", appliers.ManagedByLabel: appliers.ManagedByValue, AgentLabel: a.Agent},
			Annotations: map[string]string{appliers.AppAnnotation: a.Name}},
		Data: map[string]string{dataKey: string(b)},
	}
	// A state this store has neither read nor written is most likely new
	// (the agent lists every state at start): create it, one request.
	cms := s.cs.CoreV1().ConfigMaps(s.Namespace)
	update := func() error {
		_, err := cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: appliers.FieldManager})
		return err
	}
	create := func() error {
		_, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: appliers.FieldManager})
		return err
	}
	if ok {
		if err = update(); apierrors.IsNotFound(err) {
			err = create()
		}
	} else if err = create(); apierrors.IsAlreadyExists(err) {
		err = update()
	}
	if err != nil {
		return fmt.Errorf("saving state of app %s (ConfigMap %s/%s): %w", a.Name, s.Namespace, name, err)
	}
	s.mu.Lock()
	s.written[name] = saved{body, a.Updated}
	s.mu.Unlock()
	return nil
}

// Delete removes an app's state (the app left git and was pruned, or its
// state moved under a new name).
func (s *Store) Delete(ctx context.Context, a *App) error {
	name := ConfigMapName(a.Agent, a.Name)
	err := s.cs.CoreV1().ConfigMaps(s.Namespace).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	s.mu.Lock()
	delete(s.written, name)
	s.mu.Unlock()
	return nil
}
