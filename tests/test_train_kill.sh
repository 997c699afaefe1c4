#!/usr/bin/env bash
# celgan train survives anything: kill -9 at random moments (and while a checkpoint is being written) leaves only
# complete, loadable checkpoints and loses at most the steps since the last one; --resume then ends bit for bit
# where an uninterrupted run ends. Also a full disk (a small tmpfs, skipped when it cannot be mounted) and an
# image that becomes corrupt in the middle of a run. TAP output.
#   tests/test_train_kill.sh path/to/celgan          CELGAN_KILL_ROUNDS=N kills (default 6)
set -u
celgan=$1
bin=$(dirname "$celgan")/../tests
tmp=$(mktemp -d)
mnt=
cleanup () { [ -n "$mnt" ] && umount "$mnt" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
n=0
failed=0
ok () { n=$((n + 1)); if [ "$1" = 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi; }
check () { local name=$1; shift; if "$@" >"$tmp/out.log" 2>&1; then ok 0 "$name"; else ok 1 "$name"; sed 's/^/# /' "$tmp/out.log" | head -20; fi; }
rounds=${CELGAN_KILL_ROUNDS:-6}
RANDOM=${CELGAN_KILL_SEED:-$$}

mkdir -p "$tmp/all" && "$bin/make-test-images" "$tmp/all" || { echo "Bail out! cannot make test images"; exit 1; }
mkdir -p "$tmp/photos" "$tmp/styles"
cp "$tmp/all/rgb.png" "$tmp/all/photo.jpg" "$tmp/photos/"
cp "$tmp/all/rgba.png" "$tmp/all/rgb.png" "$tmp/styles/"
cat > "$tmp/tiny.json" <<'EOF'
{"family": "style-generator", "widths": [8, 16], "stem_kernel": 3, "down_convs": 0, "blocks": 1, "block": "residual",
 "up_widths": [8], "head_kernel": 3, "norm": "instance", "padding_mode": "reflect", "align_corners": 0}
EOF
export SOURCE_DATE_EPOCH=1700000000
steps=24
common=(--photos "$tmp/photos" --styles "$tmp/styles" --config "$tmp/tiny.json" --crop 32 --batch 2 --warmup 3
        --d-width 8 --d-layers 2 --seed 5 --steps $steps --checkpoint-every 1 --sample-every 4 --quiet)

# the uninterrupted run
check "/train/kill/reference_run" "$celgan" train "${common[@]}" --out "$tmp/ref.safetensors"

# A folder is sound when every safetensors file in it loads as a checkpoint and nothing else is there but the
# metrics, samples, the loss plot and at most one temporary file of the killed process (the write it
# interrupted; the next run removes it).
sound () { # dir killed_pid
  local f bad=0
  for f in "$1"/* "$1"/.[!.]*; do
    [ -e "$f" ] || continue
    case ${f##*/} in
      checkpoint.safetensors)
        "$celgan" info "$f" 2>&1 | grep -q "celgan.train.step: [0-9]" || { echo "$f does not load"; bad=1; } ;;
      metrics.jsonl|samples|loss.png) ;;
      *.tmp-"$2") ;;
      *) echo "unexpected file $f"; bad=1 ;;
    esac
  done
  for f in "$1"/samples/*; do
    [ -e "$f" ] || continue
    case ${f##*/} in step-*.png) ;; *.tmp-"$2") ;; *) echo "unexpected file $f"; bad=1 ;; esac
  done
  return $bad
}
ck_step () { "$celgan" info "$1/checkpoint.safetensors" 2>/dev/null | sed -n 's/.*celgan.train.step: \([0-9]*\).*/\1/p'; }

ckdir=$tmp/run.safetensors.train
last=0
during_write=0
all_sound=0
monotonic=0
for r in $(seq 1 "$rounds"); do
  resume=()
  [ -e "$ckdir/checkpoint.safetensors" ] && resume=(--resume)
  "$celgan" train "${common[@]}" --out "$tmp/run.safetensors" "${resume[@]}" 2>>"$tmp/kill.log" &
  pid=$!
  if [ $((r % 2)) = 0 ]; then
    # kill the moment a checkpoint's temporary file appears: the process is inside the checkpoint write
    for _ in $(seq 1 200000); do
      compgen -G "$ckdir/checkpoint.safetensors.tmp-$pid" >/dev/null && break
      kill -0 $pid 2>/dev/null || break
    done
  else
    # a random moment 1 to 3 steps past the checkpoint (polling the metrics keeps it independent of the load)
    target=$((last + 1 + RANDOM % 3))
    while kill -0 $pid 2>/dev/null && [ "$(cat "$ckdir/metrics.jsonl" 2>/dev/null | wc -l)" -lt $target ]; do sleep 0.02; done
    sleep "0.$((RANDOM % 10))"
  fi
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  [ -e "$ckdir/checkpoint.safetensors.tmp-$pid" ] && during_write=$((during_write + 1))
  sound "$ckdir" $pid >"$tmp/sound.log" 2>&1 || { all_sound=1; echo "# round $r:"; sed 's/^/#   /' "$tmp/sound.log"; }
  s=$(ck_step "$ckdir")
  s=${s:-0}
  [ "$s" -ge "$last" ] || { monotonic=1; echo "# round $r: checkpoint went back from step $last to $s"; }
  echo "# kill $r: checkpoint at step $s (kills inside a checkpoint write so far: $during_write)"
  last=$s
done
ok $all_sound "/train/kill/only_complete_checkpoints_after_each_kill"
ok $monotonic "/train/kill/never_loses_a_checkpoint"
[ "$during_write" -gt 0 ] || echo "# no kill landed inside a checkpoint write this time (timing)"
resume=()
[ -e "$ckdir/checkpoint.safetensors" ] && resume=(--resume)
check "/train/kill/resume_completes" "$celgan" train "${common[@]}" --out "$tmp/run.safetensors" "${resume[@]}"
check "/train/kill/resumed_model_equals_uninterrupted" cmp "$tmp/ref.safetensors" "$tmp/run.safetensors"
check "/train/kill/resumed_checkpoint_equals_uninterrupted" cmp "$tmp/ref.safetensors.train/checkpoint.safetensors" "$ckdir/checkpoint.safetensors"
check "/train/kill/metrics_one_line_per_step" bash -c "[ \"\$(sed 's/^{\"step\":\([0-9]*\),.*/\1/' '$ckdir/metrics.jsonl' | tr '\n' ' ')\" = \"\$(seq -s ' ' 1 $steps) \" ]"
check "/train/kill/no_temporary_files_left" bash -c "! ls -a '$ckdir' '$ckdir/samples' '$tmp' | grep -q '\.tmp'"

# full disk: a tmpfs with room for one checkpoint and the metrics but not for a second checkpoint beside it
mnt=$tmp/mnt
mkdir -p "$mnt"
ck_bytes=$(stat -c %s "$tmp/ref.safetensors.train/checkpoint.safetensors")
if mount -t tmpfs -o size=$(( (ck_bytes * 3 / 2 + 8192) / 4096 * 4096 )) tmpfs "$mnt" 2>/dev/null; then
  "$celgan" train "${common[@]}" --sample-every 0 --checkpoint-every 2 --checkpoint-dir "$mnt/ck" --out "$tmp/full.safetensors" \
    >"$tmp/full.log" 2>&1
  rc=$?
  ok "$([ $rc = 5 ] && echo 0 || echo 1)" "/train/full_disk/exit_5"
  [ $rc = 5 ] || { echo "# exit $rc"; sed 's/^/# /' "$tmp/full.log" | head; }
  check "/train/full_disk/message_names_the_file" grep -q "checkpoint.*No space left on device\|No space left on device.*checkpoint" "$tmp/full.log"
  grep "No space" "$tmp/full.log" | sed 's/^/#   /'
  check "/train/full_disk/previous_checkpoint_intact" bash -c "'$celgan' info '$mnt/ck/checkpoint.safetensors' | grep -q 'celgan.train.step: 2'"
  check "/train/full_disk/no_temporary_file_left" bash -c "! ls -a '$mnt/ck' | grep -q '\.tmp'"
  # with space again, the kept checkpoint resumes to the uninterrupted result
  cp -r "$mnt/ck" "$tmp/ck-full"
  check "/train/full_disk/resume_equals_uninterrupted" bash -c "'$celgan' train ${common[*]} --resume --checkpoint-dir '$tmp/ck-full' \
    --out '$tmp/full.safetensors' && cmp '$tmp/ref.safetensors' '$tmp/full.safetensors'"
  umount "$mnt"
  # the model file on a full disk: a clear error, the final checkpoint kept, and a resume writes the model
  mount -t tmpfs -o size=16k tmpfs "$mnt"
  "$celgan" train "${common[@]}" --sample-every 0 --checkpoint-every 0 --checkpoint-dir "$tmp/ck-model" \
    --out "$mnt/model.safetensors" >"$tmp/full-model.log" 2>&1
  rc=$?
  ok "$([ $rc = 5 ] && grep -q "writing the model: .*No space left on device" "$tmp/full-model.log" && echo 0 || echo 1)" \
    "/train/full_disk/model_file_error"
  [ $rc = 5 ] || { echo "# exit $rc"; sed 's/^/# /' "$tmp/full-model.log" | head; }
  check "/train/full_disk/model_no_partial_file" bash -c "! ls -a '$mnt' | grep -q 'model'"
  check "/train/full_disk/model_written_by_resume" bash -c "'$celgan' train ${common[*]} --resume --checkpoint-dir '$tmp/ck-model' \
    --out '$tmp/model.safetensors' && cmp '$tmp/ref.safetensors' '$tmp/model.safetensors'"
  umount "$mnt" && mnt=
else
  ok 0 "/train/full_disk # SKIP cannot mount a tmpfs (needs root)"
fi

# an image that becomes corrupt in the middle of a run (no decode cache, so it is read again): skipped with a
# warning, counted, and the run completes
mkdir -p "$tmp/styles3"
cp "$tmp/all/rgba.png" "$tmp/all/rgb.png" "$tmp/styles3/"
cp "$tmp/all/rgb.png" "$tmp/styles3/zz.png"
"$celgan" train --photos "$tmp/photos" --styles "$tmp/styles3" --config "$tmp/tiny.json" --crop 32 --batch 2 --warmup 1 \
  --d-width 8 --d-layers 2 --steps 60 --sample-every 0 --checkpoint-every 0 --cache-mb 0 --log-every 100 \
  --out "$tmp/corrupt.safetensors" >"$tmp/corrupt.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do
  [ -s "$tmp/corrupt.safetensors.train/metrics.jsonl" ] && [ "$(wc -l < "$tmp/corrupt.safetensors.train/metrics.jsonl")" -ge 3 ] && break
  sleep 0.1
done
head -c 100 "$tmp/all/corrupt.png" > "$tmp/styles3/zz.png"
wait $pid
rc=$?
lines=$(wc -l < "$tmp/corrupt.safetensors.train/metrics.jsonl")
ok "$([ $rc = 0 ] && [ "$lines" = 60 ] && echo 0 || echo 1)" "/train/corrupt_mid_run/run_completes"
check "/train/corrupt_mid_run/warned" grep -q "warning: skipping.*zz.png" "$tmp/corrupt.log"
check "/train/corrupt_mid_run/counted" grep -q "skipped 1 unreadable images" "$tmp/corrupt.log"
echo "1..$n"
[ $failed -eq 0 ]
