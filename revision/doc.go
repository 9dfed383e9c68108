// Package revision builds one git revision of a whole agent, before any app
// is reconciled: every app's desired objects (namespaces defaulted as the
// server will key them, file:line recorded), its BCS deployments as engine
// specs, and what the revision declares across all apps. Objects declared
// twice, within an app or across apps, reject every app that holds one.
//
// Everything here is a pure function of git and of the app's recorded
// state, except two seams: Config.Prepare (discovery: which kinds are
// served, and their scope) and Diff, which dry-runs a revision against the
// cluster without writing (`gitpace diff`, `gitpace plan`, and the agent).
//
// It sits on the data path between the sources and the policies:
//
//	sources (git → Snapshot) → manifest (Snapshot → apps) → revision (apps →
//	desired objects, specs, hashes) → policies (may it go now?) → appliers
//	(diff, apply, pace, prune) → state
package revision
