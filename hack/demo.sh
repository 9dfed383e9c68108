#!/usr/bin/env bash
# make demo: gitpace's main job, end to end, on the local control plane.
# Creates a git repository, runs the agent on it, and walks through both
# schemes of the seed guide, checking each thing it shows (it exits non-zero
# when something it shows did not happen):
#   k8s: the seed's test1-1-0.yaml; a commit that rolls out v1.1.1, a PAUSE
#        committed mid-rollout, its removal, and a git revert.
#   bcs: the seed's test1-1-0.json (BCS v4 deployment); test1-1-1.json rolled
#        in paced cycles, a PAUSE committed mid-cycle (the rollout freezes),
#        `gitpace resume` (it continues), and `gitpace rollback` while the
#        rollout is in flight (a cancel: the old version returns).
#   waves: one commit bumps three apps rolled in two waves (gitpace.yaml
#        waves: canary, then web-a and web-b one at a time after a 10 s
#        interval), with the reviewer's `gitpace plan` of the branch first.
# Leaves the cluster up.
#
# Environment (all optional):
#   DEMO_KUBECONFIG  use this running cluster; `make demo` then does not start
#                    the local one (default .cache/cluster/kubeconfig)
#   DEMO_KUBECTL     kubectl binary (default: the one next to the cluster, .cache/bin)
#   DEMO_NS          namespace of the Kubernetes-scheme app (gitpace-demo)
#   DEMO_BCS_NS      BCS namespace of the BCS deployment (the seed's defaultGroup;
#                    in Kubernetes lower-cased: defaultgroup)
#   DEMO_STATE_NS    gitpace's state namespace (gitpace-system)
#   DEMO_AGENT       the agent's --name (demo)
#   DEMO_WAVES_NS    namespace of the waves part's apps (gitpace-waves)
#   DEMO_PARTS       which parts to run, in order (k8s bcs waves)
# A previous run's namespaces (DEMO_NS, the BCS one) and the agent's state are
# deleted first, so that every run starts from nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
GITPACE=$ROOT/bin/gitpace
export KUBECONFIG=${DEMO_KUBECONFIG:-$ROOT/.cache/cluster/kubeconfig}
KUBECTL=${DEMO_KUBECTL:-$(cd "$(dirname "$KUBECONFIG")/../bin" 2>/dev/null && pwd)/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=kubectl
DEMO=$ROOT/demo
REPO=$DEMO/repo
NS=${DEMO_NS:-gitpace-demo}
BCS_NS=${DEMO_BCS_NS:-defaultGroup}
BNS=$(printf '%s' "$BCS_NS" | tr '[:upper:]' '[:lower:]') # the Kubernetes namespace of BCS_NS
STATE_NS=${DEMO_STATE_NS:-gitpace-system}
AGENT=${DEMO_AGENT:-demo}
WNS=${DEMO_WAVES_NS:-gitpace-waves}
PARTS=${DEMO_PARTS:-k8s bcs waves}
# The demo user's commits, by git and by gitpace's own verbs.
export GIT_AUTHOR_NAME="Demo User" GIT_AUTHOR_EMAIL=demo@example.com
export GIT_COMMITTER_NAME="Demo User" GIT_COMMITTER_EMAIL=demo@example.com

say()  { printf '\n\033[1;34m==> %s\033[0m\n' "$*"; }
ok()   { printf '\033[32m    ok: %s\033[0m\n' "$*"; }
fail() { printf '\033[1;31mFAILED: %s\033[0m\n' "$*"; echo "agent output: $DEMO/agent.out"; exit 1; }
# run CMD...: print the command (gp shown as gitpace), then run it.
run()  { local shown="$*"; printf '\033[2m$ %s\033[0m\n' "${shown/#gp /gitpace }"; "$@"; }
# gp: gitpace; the commands that read the cluster get the state namespace and
# the agent (other agents may share the state namespace): shown as plain gitpace.
gp() {
  local sub=$1; shift
  case $sub in
    status|history|rollback|promote) "$GITPACE" "$sub" --state-namespace "$STATE_NS" --agent "$AGENT" "$@" ;;
    *) "$GITPACE" "$sub" "$@" ;;
  esac
}
k() { "$KUBECTL" "$@"; }
agent_alive() {
  kill -0 "$(cat "$DEMO/agent.pid")" 2>/dev/null ||
    { echo "the agent stopped; its last output ($DEMO/agent.out):"; tail -n 20 "$DEMO/agent.out"; exit 1; }
}
# wait_for DESC TIMEOUT CMD...: poll CMD until it succeeds; exit 1 after TIMEOUT seconds.
wait_for() {
  local desc=$1 deadline=$((SECONDS + $2)); shift 2
  until "$@"; do
    agent_alive
    [ $SECONDS -lt $deadline ] || fail "timed out waiting for: $desc"
    sleep 0.5
  done
  ok "$desc"
}
# hold DESC SECONDS CMD...: CMD must stay true for SECONDS (polled); exit 1 if it turns false.
hold() {
  local desc=$1 secs=$2 start=$SECONDS; shift 2
  while [ $((SECONDS - start)) -lt "$secs" ]; do
    agent_alive
    "$@" || fail "$desc: no longer true after $((SECONDS - start)) s"
    sleep 0.5
  done
  ok "$desc (checked for $secs s)"
}
# field APP KEY: the first "KEY": value of `gitpace status APP -o json`
# (app keys are lower-case; a BCS deployment's are capitalised: Status, Cycle...).
field() { gp status "$1" -o json 2>/dev/null | sed -n "s/^ *\"$2\": \"\{0,1\}\([^\",]*\)\"\{0,1\},*\$/\1/p" | head -1; }
phase_is() { [ "$(field "$1" phase)" = "$2" ]; }
wait_phase() { # wait_phase PHASE [TIMEOUT]: the K8s app's phase
  wait_for "app test is $1" "${2:-120}" phase_is test "$1"
}
# rolled_back APP: the app's newest history entry is a finished rollback.
rolled_back() { gp history "$1" 2>/dev/null | tail -1 | grep -q 'rolled back (rollback to revision'; }
commit() { git -C "$REPO" add -A && git -C "$REPO" commit -q -m "$1" && git -C "$REPO" log --oneline -1; }
start_agent() {
  [ -f "$DEMO/agent.pid" ] && return
  say "Start the agent (it watches the repository with fsnotify)"
  local args=(run --repo "$REPO" --path apps --name "$AGENT" --default-namespace "$NS" --state-namespace "$STATE_NS"
    --interval 10s --listen 127.0.0.1:0 --log-level warn)
  printf '\033[2m$ gitpace %s &\033[0m\n' "${args[*]}"
  "$GITPACE" "${args[@]}" > "$DEMO/agent.out" 2>&1 &
  echo $! > "$DEMO/agent.pid"
  # tail ends by itself when the agent does (--pid).
  tail -n +1 -f --pid="$(cat "$DEMO/agent.pid")" "$DEMO/agent.out" | sed -u 's/^/    agent | /' &
}
stop_agent() {
  if [ -f "$DEMO/agent.pid" ]; then
    kill "$(cat "$DEMO/agent.pid")" 2>/dev/null || true
    rm -f "$DEMO/agent.pid"
    wait 2>/dev/null || true # the agent and the tail of its output
  fi
}

say "Start from nothing: a fresh git repository; a previous run's namespaces and state deleted"
[ -d "$DEMO" ] && stop_agent
trap stop_agent EXIT
rm -rf "$DEMO" && mkdir -p "$REPO/apps"
git init -q -b main "$REPO"
k delete namespace "$NS" "$BNS" "$WNS" --ignore-not-found --wait=true --timeout=120s
k -n "$STATE_NS" delete configmap -l "gitpace.dev/state=app,gitpace.dev/agent=$AGENT" --ignore-not-found

# ---------------------------------------------------------------------------
# Part k8s: the seed's Kubernetes scheme (a native Deployment).
# ---------------------------------------------------------------------------
k8s_image() { k -n "$NS" get deployment test -o jsonpath='{.spec.template.spec.containers[0].image}'; }
k8s_updated() { k -n "$NS" get deployment test -o jsonpath='{.status.updatedReplicas}'; }
# k8s_rs: the Deployment's ReplicaSets as NAME=REPLICAS, what a paused Deployment must not change.
k8s_rs() { k -n "$NS" get replicasets -l app=test --sort-by=.metadata.name -o jsonpath='{range .items[*]}{.metadata.name}={.spec.replicas} {end}'; }
k8s_observed() { [ "$(k -n "$NS" get deployment test -o jsonpath='{.spec.paused}/{.status.observedGeneration}/{.metadata.generation}' | awk -F/ '{print ($1 == "true" && $2 == $3)}')" = 1 ]; }
k8s_frozen() { [ "$(k8s_rs)" = "$1" ] && phase_is test Paused; }
part_k8s() {
  say "Commit the seed's test1-1-0.yaml (namespace $NS)"
  mkdir -p "$REPO/apps/test"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$NS" > "$REPO/apps/test/namespace.yaml"
  cp testdata/demo/test1-1-0.yaml "$REPO/apps/test/deployment.yaml"
  commit "test: deploy v1.1.0"
  start_agent
  wait_phase Synced
  run gp status test

  say "Commit test1-1-1.yaml (image v1.1.1, port 8888): a rolling update starts"
  cp testdata/demo/test1-1-1.yaml "$REPO/apps/test/deployment.yaml"
  commit "test: v1.1.1 listening on 8888"
  wait_phase Progressing
  wait_for "the first v1.1.1 pods are created" 60 eval '[ "$(k8s_updated)" -ge 1 ] 2>/dev/null'

  say "Commit a PAUSE marker mid-rollout: gitpace sets spec.paused, nothing more rolls"
  run gp pause test --dir "$REPO" --path apps --reason "demo: checking the first v1.1.1 pods"
  wait_phase Paused
  wait_for "spec.paused is true and the deployment controller has seen it" 30 k8s_observed
  run gp status
  local frozen; frozen=$(k8s_rs)
  hold "paused: the ReplicaSets stay at $frozen" 6 k8s_frozen "$frozen"
  run gp status test

  say "Remove PAUSE: gitpace unpauses and the rollout completes"
  run gp resume test --dir "$REPO" --path apps
  wait_phase Synced
  [ "$(k8s_image)" = hub.docker.com:xxxx/xxxxxx:v1.1.1 ] || fail "image is $(k8s_image), want v1.1.1"
  ok "deployment test runs hub.docker.com:xxxx/xxxxxx:v1.1.1"
  run gp status

  say "git revert the v1.1.1 commit: Kubernetes reuses the old ReplicaSet; gitpace reports a rollback"
  local rev; rev=$(git -C "$REPO" log --format=%H --grep 'v1.1.1 listening' -1)
  run git -C "$REPO" revert --no-edit "$rev"
  wait_for "deployment test back on v1.1.0" 60 eval '[ "$(k8s_image)" = hub.docker.com:xxxx/xxxxxx:v1.1.0 ]'
  wait_for "history records the revert as a rollback, rolled out" 60 rolled_back test
  wait_phase Synced
  run gp history test
  run gp status
}

# ---------------------------------------------------------------------------
# Part bcs: the seed's BCS "Mesos scheme" (a v4 deployment, cycles paced by
# gitpace). testdata/demo/test1-1-*.json are the seed's files (testdata/bcs)
# with instance 3 (three cycles; the seed's 2 give only one pause between
# cycles), upgradeDuration 8 s (the seed's 60), no UNIQUE InnerIP constraint
# (3 old + 1 new pods cannot be placed one per node on 3 fake nodes) and a
# 4 s kwok readiness delay (a cycle lasts long enough to pause it mid-way).
# ---------------------------------------------------------------------------
V0=hub.docker.com:xxxx/xxxxxx:v1.1.0
V1=hub.docker.com:xxxx/xxxxxx:v1.1.1
# apps: the BCS applications (ReplicaSets) as NAME=REPLICAS/READY:IMAGE, by name.
apps() {
  k -n "$BNS" get replicasets -l bcs.gitpace.dev/deployment=test --sort-by=.metadata.name \
    -o jsonpath='{range .items[*]}{.metadata.name}={.spec.replicas}/{.status.readyReplicas}:{.spec.template.spec.containers[0].image}{" "}{end}' |
    sed 's|:hub.docker.com:xxxx/xxxxxx:|:|g; s|/:|/0:|g; s/ $//'
}
newapp() { apps | tr ' ' '\n' | sed -n 's/^\(test-v[0-9]*\)=.*/\1/p'; }
# is_apps PATTERN: the applications match PATTERN (an extended regexp, whole line).
is_apps() { apps | grep -Eqx "$1"; }
bcs() { field bcs "$1"; }
frozen() { is_apps "$1" && [ "$(bcs Status)" = UpdatePaused ] && [ "$(bcs Cycle)" = 1 ]; }
bcs_file() { sed "s/\"namespace\": \"defaultGroup\"/\"namespace\": \"$BCS_NS\"/" "testdata/demo/$1" > "$REPO/apps/bcs/test.json"; }
part_bcs() {
  say "BCS scheme: commit the seed's test1-1-0.json (a v4 deployment, BCS namespace $BCS_NS)"
  run diff -u testdata/bcs/test1-1-0.json testdata/demo/test1-1-0.json || true
  mkdir -p "$REPO/apps/bcs"
  bcs_file test1-1-0.json
  commit "bcs: deploy v1.1.0"
  start_agent
  wait_for "application test runs 3 pods of v1.1.0" 90 is_apps "test=3/3:v1.1.0"
  wait_for "app bcs is Synced" 30 phase_is bcs Synced
  run gp status bcs

  say "Commit test1-1-1.json (image v1.1.1, port 8888): paced cycles, one every upgradeDuration (8 s)"
  bcs_file test1-1-1.json
  commit "bcs: v1.1.1 listening on 8888"
  # Cycle 1's new pod takes 4 s to be Ready: the PAUSE below lands in that
  # start phase (on a very slow machine, after it: still before cycle 2).
  wait_for "cycle 1 under way: new application test-v<seconds> scaled to 1" 30 \
    is_apps "test=[23]/[0-9]:v1.1.0 test-v[0-9]+=1/[01]:v1.1.1"
  local rollout; rollout=$(newapp)

  say "Commit a PAUSE marker mid-cycle: the cycle in flight completes, the next one does not start"
  run gp pause bcs --dir "$REPO" --path apps --reason "demo: checking the first v1.1.1 pod"
  echo "    applications (NAME=INSTANCE/READY:IMAGE) when PAUSE was committed: $(apps)"
  wait_for "cycle 1 completed (new 1 Ready, old scaled down to 2) and the rollout is UpdatePaused" 30 \
    frozen "test=2/2:v1.1.0 $rollout=1/1:v1.1.1"
  run gp status bcs
  # upgradeDuration (8 s) has passed well before the hold ends: unpaused, cycle 2 would have started.
  hold "frozen: cycle 1 of 3, UpdatePaused, applications unchanged" 12 frozen "test=2/2:v1.1.0 $rollout=1/1:v1.1.1"
  run gp status bcs

  say "gitpace resume: commits the PAUSE marker's removal; the rollout continues with cycle 2"
  run gp resume bcs --dir "$REPO" --path apps
  wait_for "cycle 2 completed (new 2 Ready, old 1)" 30 is_apps "test=1/1:v1.1.0 $rollout=2/2:v1.1.1"
  wait_for "status: cycle 2, RollingUpdate" 10 eval '[ "$(bcs Cycle)/$(bcs Status)" = 2/RollingUpdate ]'
  run gp status bcs

  say "gitpace rollback while the rollout is in flight (before cycle 3): a revert commit, which cancels the rollout"
  run gp rollback bcs --dir "$REPO" --path apps
  git -C "$REPO" log --oneline -1
  wait_for "cancelled: $rollout deleted, application test back at 3 Ready pods of v1.1.0" 60 is_apps "test=3/3:v1.1.0"
  wait_for "history records a rollback to revision 1" 30 rolled_back bcs
  wait_for "app bcs is Synced" 30 phase_is bcs Synced
  [ "$(bcs Status)" = Running ] || fail "BCS deployment status $(bcs Status), want Running"
  ok "BCS deployment test is Running"
  run gp status bcs
  run gp history bcs
}

# ---------------------------------------------------------------------------
# Part waves: one commit bumps the image of three apps, rolled in two waves
# (gitpace.yaml waves): canary first; web-a and web-b, one at a time
# (maxApps 1), 10 s after canary is Healthy (interval). The reviewer's view
# is `gitpace plan` of the branch before it is merged.
# ---------------------------------------------------------------------------
wave_app() { # wave_app NAME IMAGE: a one-replica Deployment whose pod is Ready after 2 s
  cat <<EOT
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $1
  namespace: $WNS
spec:
  replicas: 1
  selector:
    matchLabels: {app: $1}
  template:
    metadata:
      annotations: {pod-ready.stage.kwok.x-k8s.io/delay: "2s"}
      labels: {app: $1}
    spec:
      containers:
      - name: app
        image: $2
EOT
}
wave_image() { k -n "$WNS" get deployment "$1" -o jsonpath='{.spec.template.spec.containers[0].image}'; }
wave_done() { [ "$(wave_image "$1")" = "$V1" ] && phase_is "$1" Synced && [ "$(field "$1" health)" = Healthy ]; }
wave_waits() { gp status "$1" -o json 2>/dev/null | grep -q "^ *\"reason\": \".*$2"; }
part_waves() {
  say "Waves: three apps on v1.1.0 in namespace $WNS (app waves-ns brings the Namespace)"
  mkdir -p "$REPO/apps/waves-ns" "$REPO/apps/canary" "$REPO/apps/web-a" "$REPO/apps/web-b"
  printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$WNS" > "$REPO/apps/waves-ns/namespace.yaml"
  for a in canary web-a web-b; do wave_app "$a" "$V0" > "$REPO/apps/$a/deployment.yaml"; done
  commit "canary, web-a, web-b: v1.1.0"
  start_agent
  for a in canary web-a web-b; do wait_for "app $a Synced on v1.1.0" 90 phase_is "$a" Synced; done

  say "A pull request: waves in gitpace.yaml and v1.1.1 for all three; the reviewer runs gitpace plan on its branch"
  git -C "$REPO" checkout -q -b bump
  cat > "$REPO/apps/gitpace.yaml" <<EOT
waves:
- apps: [canary]
  interval: 10s      # like upgradeDuration: wait after canary is Healthy
- apps: ["web-*"]
  maxApps: 1         # one app at a time
EOT
  for a in canary web-a web-b; do wave_app "$a" "$V1" > "$REPO/apps/$a/deployment.yaml"; done
  commit "canary, web-a, web-b: v1.1.1, in two waves"
  printf '\033[2m$ gitpace plan --repo %s --rev bump --path apps --name %s   # (its waves table)\033[0m\n' "$REPO" "$AGENT"
  # Exit code 2: the revision changes something (0: nothing).
  "$GITPACE" plan --repo "$REPO" --rev bump --path apps --name "$AGENT" --state-namespace "$STATE_NS" \
    --default-namespace "$NS" > "$DEMO/plan.txt" || [ $? -eq 2 ] || fail "gitpace plan failed: $(tail -3 "$DEMO/plan.txt")"
  sed -n '/^waves/,/^$/p' "$DEMO/plan.txt"
  grep -Eq '^  2 +[0-9TZ:-]+ \(now\+10s\) +1 +- +web-a, web-b$' "$DEMO/plan.txt" || fail "the plan does not show wave 2 (web-a, web-b) 10 s after wave 1"
  ok "the plan shows wave 2 (web-a, web-b, one at a time) 10 s after wave 1"
  say "Merge it: wave 1 (canary) rolls; wave 2 waits"
  git -C "$REPO" checkout -q main && git -C "$REPO" merge -q --ff-only bump && git -C "$REPO" log --oneline -1
  wait_for "web-a and web-b wait for wave 1" 60 wave_waits web-a "wave 2 of 2"
  wait_for "canary rolled out v1.1.1" 60 wave_done canary
  wait_for "wave 2 waits for wave 1's 10 s interval" 20 wave_waits web-a "wave 2 of 2 starts at"
  [ "$(wave_image web-a)" = "$V0" ] && [ "$(wave_image web-b)" = "$V0" ] || fail "wave 2 started before wave 1's interval"
  ok "web-a and web-b still on v1.1.0"
  run gp status
  wait_for "wave 2: web-a rolled out v1.1.1" 60 wave_done web-a
  wait_for "wave 2: web-b rolled out v1.1.1" 60 wave_done web-b
  # maxApps 1: web-b's new ReplicaSet was created only once web-a was Healthy.
  local a b
  a=$(field web-a readyAt)
  b=$(k -n "$WNS" get rs -l app=web-b --sort-by=.metadata.creationTimestamp -o jsonpath='{.items[-1:].metadata.creationTimestamp}')
  [[ ! "$b" < "${a%%.*}" ]] || fail "web-b's new ReplicaSet ($b) before web-a was Healthy ($a): maxApps 1 broken"
  ok "web-b started ($b) after web-a was Healthy (${a%%.*})"
  run gp status
}

for part in $PARTS; do
  case $part in
    k8s) part_k8s ;;
    bcs) part_bcs ;;
    waves) part_waves ;;
    *) fail "unknown DEMO_PARTS entry $part (k8s, bcs, waves)" ;;
  esac
done

stop_agent
say "Done: everything shown was checked. The cluster is still up. Look around:"
sflag=" --agent $AGENT"
[ "$STATE_NS" = gitpace-system ] || sflag+=" --state-namespace $STATE_NS"
cat <<EOT
  export KUBECONFIG=$KUBECONFIG
  $GITPACE status$sflag            # apps, revisions, rollouts, BCS applications
  $GITPACE history test$sflag      # every revision with its commit and outcome
  $KUBECTL -n $NS rollout history deployment/test   # CHANGE-CAUSE = commit
  $KUBECTL -n $NS get rs                           # the reused ReplicaSet
  $KUBECTL -n $BNS get rs --show-labels             # the BCS applications
  git -C $REPO log --oneline  # git is the control surface
  make cluster-down          # when finished
EOT
