#!/usr/bin/env bash
# make demo: gitpace's main job, end to end, on the local control plane.
# Creates a git repository from testdata/demo (the seed's test1-1-0.yaml),
# runs the agent, and walks through: a commit that rolls out v1.1.1, a PAUSE
# committed mid-rollout, its removal, and a git revert. Leaves the cluster up.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GITPACE=$ROOT/bin/gitpace
export KUBECONFIG=$ROOT/.cache/cluster/kubeconfig
DEMO=$ROOT/demo
REPO=$DEMO/repo
NS=gitpace-demo
# The demo user's commits, by git and by gitpace's own verbs.
export GIT_AUTHOR_NAME="Demo User" GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME="Demo User" GIT_COMMITTER_EMAIL=demo@example.com

say()  { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
run()  { printf '\033[2m$ %s\033[0m\n' "$*"; "$@"; }
state() { "$GITPACE" status test -o json | sed -n 's/^ *"phase": "\(.*\)",*$/\1/p' | head -1; }
wait_phase() { # wait_phase PHASE [TIMEOUT]; returns 1 on timeout
  local deadline=$((SECONDS + ${2:-120}))
  until [ "$(state)" = "$1" ]; do
    if ! kill -0 "$(cat "$DEMO/agent.pid")" 2>/dev/null; then
      echo "the agent stopped; its last output ($DEMO/agent.out):"; tail -n 20 "$DEMO/agent.out"; exit 1
    fi
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $1 (is $(state)); agent output: $DEMO/agent.out"; return 1; }
    sleep 1
  done
}
commit() { git -C "$REPO" add -A && git -C "$REPO" commit -q -m "$1" && git -C "$REPO" log --oneline -1; }

say "A fresh git repository holding the seed's test1-1-0.yaml (namespace $NS)"
[ -f "$DEMO/agent.pid" ] && kill "$(cat "$DEMO/agent.pid")" 2>/dev/null || true
rm -rf "$DEMO" && mkdir -p "$REPO/apps/test"
git init -q -b main "$REPO"
kubectl_ns() { printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$NS"; }
kubectl_ns > "$REPO/apps/test/namespace.yaml"
cp testdata/demo/test1-1-0.yaml "$REPO/apps/test/deployment.yaml"
commit "test: deploy v1.1.0"

say "Start the agent (it watches the repository with fsnotify)"
"$GITPACE" run --repo "$REPO" --path apps --default-namespace "$NS" --interval 10s --listen 127.0.0.1:0 \
  --log-level warn > "$DEMO/agent.out" 2>&1 &
echo $! > "$DEMO/agent.pid"
tail -n +1 -f "$DEMO/agent.out" | sed 's/^/    agent | /' &
TAIL=$!
trap 'kill $TAIL "$(cat "$DEMO/agent.pid")" 2>/dev/null || true' EXIT
wait_phase Synced
run "$GITPACE" status

say "Commit test1-1-1.yaml (image v1.1.1, port 8888): a rolling update starts"
cp testdata/demo/test1-1-1.yaml "$REPO/apps/test/deployment.yaml"
commit "test: v1.1.1 listening on 8888"
wait_phase Progressing
sleep 3

say "Commit a PAUSE marker mid-rollout: gitpace sets spec.paused, nothing more rolls"
run "$GITPACE" pause test --dir "$REPO" --path apps --reason "demo: checking the first v1.1.1 pods"
wait_phase Paused
run "$GITPACE" status
sleep 6
run "$GITPACE" status test

say "Remove PAUSE: gitpace unpauses and the rollout completes"
run "$GITPACE" resume test --dir "$REPO" --path apps
wait_phase Synced
run "$GITPACE" status

say "git revert the v1.1.1 commit: Kubernetes reuses the old ReplicaSet; gitpace reports a rollback"
REV=$(git -C "$REPO" log --format=%H --grep 'v1.1.1 listening' -1)
run git -C "$REPO" revert --no-edit "$REV"
wait_phase Progressing 30 || true
wait_phase Synced
run "$GITPACE" history test
run "$GITPACE" status

kill "$(cat "$DEMO/agent.pid")" 2>/dev/null || true
say "Done. The cluster is still up. Look around:"
cat <<EOT
  export KUBECONFIG=$KUBECONFIG
  $GITPACE status            # apps, revisions, rollouts
  $GITPACE history test      # every revision with its commit and outcome
  .cache/bin/kubectl -n $NS rollout history deployment/test   # CHANGE-CAUSE = commit
  .cache/bin/kubectl -n $NS get rs                           # the reused ReplicaSet
  git -C $REPO log --oneline  # git is the control surface
  make cluster-down          # when finished
EOT
