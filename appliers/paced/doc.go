// Package paced is gitpace's rollout engine for BCS v4 deployments (the
// Mesos scheme of BlueKing Container Service): it drives BCS's rolling-update
// cycles over two ReplicaSets, the old and the new "application", while the
// ReplicaSet controller keeps their pods alive.
//
// The engine is two parts. Next is a pure function of (spec at the current
// git revision, observed ReplicaSets and pods, persisted State, controls and
// clock) that returns one Decision: create application X with N replicas,
// scale X to N, delete X, wait (until a time or until pods change) or done,
// with a status (Running, Deploying, RollingUpdate, UpdatePaused,
// UpdateSuspend) and reason, plus the State to persist before acting. Engine
// is the thin I/O around it: Reconcile observes, calls Next, persists, acts
// once and reports a Status.
//
// # Rules (docs/rolling-update-semantics.md §1)
//
//   - Create: the first commit creates one application named like the
//     deployment with spec.instance pods.
//   - An instance-only change (same TemplateHash) scales the application; it
//     does not roll.
//   - A template change creates the new application "<name>-v<unix seconds>"
//     with 0 pods ("-v<digits>" is stripped first, so suffixes never stack;
//     a taken name moves to the next second). Both applications then report
//     RollingUpdate.
//   - Cycles. A cycle may start once now − end of the previous cycle ≥
//     upgradeDuration (the first starts at once). It fixes its targets when
//     it starts and keeps them, across crashes and pauses:
//     new = min(new + maxSurge, instance), old = max(old − maxUnavailable, 0)
//     (new is never lowered by a cycle). CreateFirst: scale new up, wait
//     until that many new pods are Ready (start phase), then scale old down
//     and wait until its extra pods are gone (delete phase). DeleteFirst:
//     the delete phase first. An instance change mid-rollout applies from
//     the next cycle.
//   - Finish: between cycles, when old = 0 and new ≥ instance, the old
//     application is deleted and the deployment points at the new one
//     (Running). Finishing is not a cycle: it needs no promote and no wait.
//   - Suspend: a start phase running longer than StartTimeout (360 s) or a
//     delete phase longer than DeleteTimeout (7560 s) reports UpdateSuspend
//     with the reason. Nothing is undone and the cycle keeps its targets.
//     gitpace has no resume verb: the rollout continues by itself as soon as
//     the awaited condition holds (pods become Ready or go away), or a new
//     commit changes course (a revert cancels, a newer template restarts).
//   - Pause (a committed PAUSE marker): the cycle in flight completes, the
//     next one does not start (UpdatePaused). Lifting it continues the
//     rollout where it stands; a cycle that was half done (its targets are
//     persisted) is finished with its own targets, never restarted with
//     fresh ones (bk-bcs#87). A pause also holds the finish, so that the old
//     application stays for a fast cancel. It does not hold a cancel,
//     steady-state scaling, or the creation of a new application with 0
//     pods (which shows the rollout's name; its cycles wait).
//   - rollingManually: the first cycle starts with the update; every cycle
//     ends UpdatePaused and the next is released only by Controls.Promote
//     whose Rollout is the current new application's name. Promote.Cycles
//     is the total number of cycles approved for that rollout, and
//     State.Promoted counts those already consumed: each increment releases
//     exactly one more cycle; a promote naming another rollout (a stale
//     PROMOTE file) releases nothing. A released cycle still honours
//     upgradeDuration.
//   - Cancel: a spec whose TemplateHash is the old application's during a
//     rollout (a git revert) restores the old application to the instance
//     count it had when the rollout started (recreating it from the spec,
//     which is its definition, if it is gone), then deletes the new one,
//     neither waiting for pods: it is not paced. A pause does not hold it.
//     After a finished rollout, a revert is an ordinary rolling update.
//   - Newer template mid-rollout (neither the old nor the new hash): treated
//     like a cancel, then a fresh rollout. The old application stays the
//     base and is restored to its pre-rollout count, the in-flight new
//     application is deleted, and a rollout to the newest template starts
//     with a new name (and a fresh promote count). So there are never three
//     applications, and the base is always an application that ran in
//     full. If the old application is already gone, the in-flight one
//     becomes the base instead.
//
// # Worked examples
//
// Instance 4, maxSurge 2, maxUnavailable 1, CreateFirst, upgradeDuration
// 60 s, pods Ready at once (TestWorkedExamples runs these):
//
//	cycle  start   targets        actions                              pods old+new
//	  -    t+0     -              create test-v1562517103 with 0       4+0
//	  1    t+0     new 2, old 3   scale new 0→2, Ready; old 4→3        4+2=6, then 3+2
//	  2    t+60s   new 4, old 2   scale new 2→4, Ready; old 3→2        3+4=7, then 2+4
//	  3    t+120s  new 4, old 1   (new already 4) old 2→1              1+4
//	  4    t+180s  new 4, old 0   old 1→0                              0+4
//	finish t+180s                 delete test; the deployment is test-v1562517103
//
// The peak of 7 pods shows that maxSurge and maxUnavailable are batch sizes
// per cycle, not global bounds as in a Kubernetes Deployment. With
// DeleteFirst the same targets are reached old first: 4→3 then 0→2 (peak
// 3+2=5 after the start phase), 3→2 then 2→4 (peak 6), 2→1, 1→0. The seed
// (instance 2, 1/1, CreateFirst): new 0→1, old 2→1; 60 s; new 1→2, old 1→0;
// delete test: two cycles, at most 3 pods.
//
// # State and crashes
//
// State is persisted as JSON in the annotation AnnotationState
// ("paced.gitpace.dev/state") of the deployment's ReplicaSets: every write
// goes to the application that survives the decided action (the state's
// Base, else its New), and every ReplicaSet the engine creates carries the
// state at creation. Each write increments State.Seq and the copy with the
// highest Seq wins, so a finish (state moves to the new application, then
// the old one is deleted) needs no second object. The state thus lives and
// dies with the deployment's ReplicaSets: Engine.Delete and namespace
// deletion take it along, nothing is left behind in another namespace.
// Writes are conditional on the observed resourceVersion.
//
// Each Decision's State is written before its action (write-ahead) and only
// when it changed. A crash before the write repeats the step; a crash after
// it finds the same state, so Next decides the same action again (scale to
// the same fixed target, create the same name) or, if it was performed,
// the next one. A crash between persisting a finish, cancel or restart and
// deleting the application it drops leaves a ReplicaSet that is neither
// Base nor New: Next deletes such strays first. If no state is found (or
// none of the applications it names exists), Next adopts the application
// named like the deployment, else the oldest, and deletes the others.
//
// ReplicaSets carry the labels bcs.gitpace.dev/deployment,
// bcs.gitpace.dev/application (the selector, with the deployment label) and
// app.kubernetes.io/managed-by=gitpace, and the annotations
// bcs.gitpace.dev/template-hash and paced.gitpace.dev/revision. They are
// created by server-side apply (field manager "gitpace") and scaled by
// merge patches of spec.replicas; which pods go on scale-down is the
// ReplicaSet controller's choice (not-ready and newest first, close to
// BCS's "highest instance ids first").
package paced
