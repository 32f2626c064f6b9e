#!/usr/bin/env bash
# Self-distillation orchestrator: capture -> relabel -> retrain -> (optional) eval, with metadata,
# relabel tags, promotion with backup, and a storage reminder (contract: seeds/001 in the shared folder).
#
#   bash scripts/self_distill.sh --config configs/self_distill/discover_distill.env \
#     --teacher-checkpoint runs/pretrain_120m_base/ckpt_latest.pt \
#     [--teacher-scorecard FILE] [--promotion-target PATH] [--promotion-record FILE] \
#     [--storage-alert-file FILE] [--run-id ID]
#
# The config is a bash file defining CAPTURE_CMD, RELABEL_CMD, RETRAIN_CMD and optionally EVAL_CMD
# (see configs/self_distill/template.env). Each runs with `bash -c` from the repository root, with
# RUN_ID, RUN_DIR, LOG_DIR, CHECKPOINT_DIR, ARTIFACT_DIR, METADATA_DIR, TEACHER_CHECKPOINT,
# TEACHER_SCORECARD and RELABEL_TAG_FILE exported. A failing stage stops the loop and is marked
# failed in metadata.json, which is valid JSON at every moment (written by self_distill_meta.py).
# A run never overwrites another: the default run id is the UTC time + pid + a random suffix, the
# run directory is created atomically (mkdir), an existing --run-id is refused, and so is an
# existing promotion backup <target>.bak.<run-id>.
set -euo pipefail

usage() { sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; }
die() { echo "error: $*" >&2; exit 2; }

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CONFIG="" TEACHER_CHECKPOINT="" TEACHER_SCORECARD="" PROMOTION_TARGET="" PROMOTION_RECORD="" STORAGE_ALERT_FILE=""
RUN_ID=""
while [ $# -gt 0 ]; do
  case "$1" in
    --config) CONFIG="${2-}"; shift 2 ;;
    --teacher-checkpoint) TEACHER_CHECKPOINT="${2-}"; shift 2 ;;
    --teacher-scorecard) TEACHER_SCORECARD="${2-}"; shift 2 ;;
    --promotion-target) PROMOTION_TARGET="${2-}"; shift 2 ;;
    --promotion-record) PROMOTION_RECORD="${2-}"; shift 2 ;;
    --storage-alert-file) STORAGE_ALERT_FILE="${2-}"; shift 2 ;;
    --run-id) RUN_ID="${2-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -n "$CONFIG" ] || die "--config is required"
[ -f "$CONFIG" ] || die "--config: file not found: $CONFIG"
[ -z "$RUN_ID" ] || [[ "$RUN_ID" =~ ^[A-Za-z0-9._-]+$ ]] || die "--run-id: only letters, digits, . _ - allowed: $RUN_ID"
[ -z "$TEACHER_CHECKPOINT" ] || [ -f "$TEACHER_CHECKPOINT" ] || die "--teacher-checkpoint: file not found: $TEACHER_CHECKPOINT"
[ -z "$TEACHER_SCORECARD" ] || [ -f "$TEACHER_SCORECARD" ] || die "--teacher-scorecard: file not found: $TEACHER_SCORECARD"

PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON="$ROOT/.venv/bin/python"; else PYTHON="python3"; fi
fi
META_TOOL=("$PYTHON" "$ROOT/scripts/self_distill_meta.py")
# stage commands say `python ...`: make that the project's interpreter when it has a .venv
if [ -x "$ROOT/.venv/bin/python" ]; then export PATH="$ROOT/.venv/bin:$PATH"; fi

# The run directory is claimed with a plain mkdir (atomic, fails if it exists): two runs can never share it.
RUNS_ROOT="$ROOT/runs/self_distill"
if [ -n "$RUN_ID" ] && [ -n "$PROMOTION_TARGET" ] && [ -e "$PROMOTION_TARGET.bak.$RUN_ID" ]; then
  die "--run-id $RUN_ID: promotion backup $PROMOTION_TARGET.bak.$RUN_ID already exists" \
    "(choose another id; nothing was changed)"
fi
mkdir -p "$RUNS_ROOT"
if [ -n "$RUN_ID" ]; then
  mkdir "$RUNS_ROOT/$RUN_ID" 2>/dev/null \
    || die "--run-id $RUN_ID: run directory $RUNS_ROOT/$RUN_ID already exists (choose another id; nothing was changed)"
else
  for _ in 1 2 3 4 5 6 7 8; do  # default id: UTC time + pid + random (RANDOM read here, not in a subshell)
    printf -v RUN_ID '%s-%s-%04x%04x' "$(date -u +%Y%m%dT%H%M%SZ)" "$$" "$RANDOM" "$RANDOM"
    if mkdir "$RUNS_ROOT/$RUN_ID" 2>/dev/null; then break; fi
    RUN_ID=""
  done
  [ -n "$RUN_ID" ] || die "could not create a fresh run directory under $RUNS_ROOT"
fi
RUN_DIR="$RUNS_ROOT/$RUN_ID"
LOG_DIR="$RUN_DIR/logs" CHECKPOINT_DIR="$RUN_DIR/checkpoints" ARTIFACT_DIR="$RUN_DIR/artifacts" METADATA_DIR="$RUN_DIR/metadata"
mkdir "$LOG_DIR" "$CHECKPOINT_DIR" "$ARTIFACT_DIR" "$METADATA_DIR"
META="$METADATA_DIR/metadata.json"
PROMOTION_RECORD="${PROMOTION_RECORD:-$METADATA_DIR/promotion.json}"
STORAGE_ALERT_FILE="${STORAGE_ALERT_FILE:-$METADATA_DIR/storage_alert.txt}"

CAPTURE_CMD="" RELABEL_CMD="" RETRAIN_CMD="" EVAL_CMD="" RELABEL_TAG_FILE="" STUDENT_CHECKPOINT_GLOB="*.pt"
# shellcheck source=/dev/null
source "$CONFIG"
RELABEL_TAG_FILE="${RELABEL_TAG_FILE:-$ARTIFACT_DIR/relabel_tags.jsonl}"
export RUN_ID RUN_DIR LOG_DIR CHECKPOINT_DIR ARTIFACT_DIR METADATA_DIR TEACHER_CHECKPOINT TEACHER_SCORECARD RELABEL_TAG_FILE
for var in CAPTURE_CMD RELABEL_CMD RETRAIN_CMD; do
  [ -n "${!var}" ] || die "$CONFIG does not define $var"
done

"${META_TOOL[@]}" init "$META" --run-id "$RUN_ID" --config "$CONFIG" \
  --teacher-checkpoint "$TEACHER_CHECKPOINT" --teacher-scorecard "$TEACHER_SCORECARD"
echo "self_distill: run $RUN_ID -> $RUN_DIR"

run_stage() {  # run_stage NAME COMMAND
  local name="$1" cmd="$2" log="$LOG_DIR/$1.log" rc=0
  "${META_TOOL[@]}" stage "$META" --stage "$name" --status running --command "$cmd" --log "$log"
  echo "self_distill: [$name] $cmd"
  set +e
  (cd "$ROOT" && bash -c "$cmd") 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ "$rc" -ne 0 ]; then
    "${META_TOOL[@]}" stage "$META" --stage "$name" --status failed --rc "$rc"
    "${META_TOOL[@]}" set "$META" status failed
    "${META_TOOL[@]}" set "$META" completed_at now
    echo "error: stage $name failed (exit $rc); log: $log" >&2
    exit "$rc"
  fi
  "${META_TOOL[@]}" stage "$META" --stage "$name" --status succeeded --rc 0
}

run_stage capture "$CAPTURE_CMD"
"${META_TOOL[@]}" relabel-tags "$METADATA_DIR/relabel_tags.json" --tag-file "$RELABEL_TAG_FILE" \
  --teacher-scorecard "$TEACHER_SCORECARD" --teacher-checkpoint "$TEACHER_CHECKPOINT"
run_stage relabel "$RELABEL_CMD"
run_stage retrain "$RETRAIN_CMD"

# the student checkpoint: the newest file under checkpoints/ matching STUDENT_CHECKPOINT_GLOB
STUDENT=""
while IFS= read -r -d '' f; do
  if [ -z "$STUDENT" ] || [ "$f" -nt "$STUDENT" ]; then STUDENT="$f"; fi
done < <(find "$CHECKPOINT_DIR" -type f -path "$CHECKPOINT_DIR/$STUDENT_CHECKPOINT_GLOB" -print0)
if [ -n "$STUDENT" ]; then
  "${META_TOOL[@]}" set "$META" student_checkpoint "$STUDENT"
fi

if [ -n "$EVAL_CMD" ]; then
  export STUDENT_CHECKPOINT="$STUDENT"
  run_stage eval "$EVAL_CMD"
else
  "${META_TOOL[@]}" stage "$META" --stage eval --status skipped --command "" --log ""
fi

if [ -n "$PROMOTION_TARGET" ]; then
  [ -n "$STUDENT" ] || { "${META_TOOL[@]}" set "$META" status failed; die "--promotion-target given but retrain left no checkpoint in $CHECKPOINT_DIR"; }
  BACKUP=""
  mkdir -p "$(dirname "$PROMOTION_TARGET")"
  if [ -e "$PROMOTION_TARGET" ]; then
    BACKUP="$PROMOTION_TARGET.bak.$RUN_ID"
    # never overwrite an earlier backup: copy to a temp file, then hard-link it in (fails if the name exists)
    cp -p "$PROMOTION_TARGET" "$BACKUP.tmp.$$"
    if ! ln "$BACKUP.tmp.$$" "$BACKUP" 2>/dev/null; then
      rm -f "$BACKUP.tmp.$$"
      "${META_TOOL[@]}" set "$META" status failed
      "${META_TOOL[@]}" set "$META" completed_at now
      if [ -e "$BACKUP" ]; then die "backup $BACKUP already exists: refusing to overwrite it; $PROMOTION_TARGET was not promoted"; fi
      die "could not create backup $BACKUP (hard link); $PROMOTION_TARGET was not promoted"
    fi
    rm -f "$BACKUP.tmp.$$"
  fi
  cp "$STUDENT" "$PROMOTION_TARGET.tmp.$RUN_ID"
  mv -f "$PROMOTION_TARGET.tmp.$RUN_ID" "$PROMOTION_TARGET"
  "${META_TOOL[@]}" promotion "$PROMOTION_RECORD" --run-id "$RUN_ID" --source "$STUDENT" --target "$PROMOTION_TARGET" \
    --backup "$BACKUP"
  {
    echo "self_distill run $RUN_ID promoted $STUDENT -> $PROMOTION_TARGET"
    [ -z "$BACKUP" ] || echo "backup kept at $BACKUP: verify storage quota and delete obsolete backups once the promotion is validated"
    echo "checkpoints of this run: $CHECKPOINT_DIR ($(du -sh "$CHECKPOINT_DIR" | cut -f1))"
  } > "$STORAGE_ALERT_FILE"
  echo "self_distill: promoted to $PROMOTION_TARGET (record $PROMOTION_RECORD, storage note $STORAGE_ALERT_FILE)"
fi
"${META_TOOL[@]}" set "$META" status succeeded
"${META_TOOL[@]}" set "$META" completed_at now
echo "self_distill: done; metadata $META"
