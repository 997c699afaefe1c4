#!/usr/bin/env bash
# celgan train end to end on a tiny configuration: a run produces a loadable model (info, apply), metrics,
# samples, a loss plot and a checkpoint; resuming is exact (4 steps == 2 + resume + 2, bit for bit); bad
# inputs give a clear error and the documented exit code. TAP output.
#   tests/test_train.sh path/to/celgan
set -u
celgan=$1
bin=$(dirname "$celgan")/../tests
. "$(dirname "${BASH_SOURCE[0]}")/tap.sh"

# images: make-test-images writes 67x45, 40x52 and 48x40 colour images (usable with a 32 crop), smaller ones,
# and a corrupt PNG
mkdir -p "$tmp/all" && "$bin/make-test-images" "$tmp/all" || { echo "Bail out! cannot make test images"; exit 1; }
mkdir -p "$tmp/photos" "$tmp/styles" "$tmp/empty" "$tmp/bad" "$tmp/small"
cp "$tmp/all/rgb.png" "$tmp/all/photo.jpg" "$tmp/photos/"
cp "$tmp/all/rgba.png" "$tmp/all/rgb.png" "$tmp/styles/"
cp "$tmp/all/corrupt.png" "$tmp/styles/zz-corrupt.png"   # skipped with a warning, counted
cp "$tmp/all/gray.png" "$tmp/styles/"                    # 33x29: smaller than the crop, skipped
cp "$tmp/all/corrupt.png" "$tmp/bad/"
cp "$tmp/all/gray.png" "$tmp/all/graya.png" "$tmp/small/"
cat > "$tmp/tiny.json" <<'EOF'
{"family": "style-generator", "widths": [8, 16], "stem_kernel": 3, "down_convs": 0, "blocks": 1, "block": "residual",
 "up_widths": [8], "head_kernel": 3, "norm": "instance", "padding_mode": "reflect", "align_corners": 0}
EOF
export SOURCE_DATE_EPOCH=1700000000 # reproducible model metadata, so model files can be compared with cmp
common=(--photos "$tmp/photos" --styles "$tmp/styles" --config "$tmp/tiny.json" --crop 32 --batch 2 --warmup 2
        --d-width 8 --d-layers 2 --seed 3)

check "/train/help" "$celgan" train --help
check "/train/tiny_run" "$celgan" train "${common[@]}" --out "$tmp/m.safetensors" --steps 6 --sample-every 3 --log-every 1
run=$tmp/m.safetensors.train
check "/train/model_loads" bash -c "'$celgan' info '$tmp/m.safetensors' | grep -q 'Family: style-generator\\|style-generator'"
check "/train/model_has_provenance" bash -c "'$celgan' info '$tmp/m.safetensors' | grep -q 'celgan train'"
check "/train/model_applies" "$celgan" apply --quiet -i "$tmp/all/rgb.png" -o "$tmp/applied.png" -m "$tmp/m.safetensors"
check "/train/metrics_has_a_line_per_step" bash -c "[ \$(wc -l < '$run/metrics.jsonl') -eq 6 ] &&
  grep -q '\"step\":6,\"phase\":\"gan\",\"g_adv\":' '$run/metrics.jsonl' && grep -q '\"images_per_s\"' '$run/metrics.jsonl'"
check "/train/samples_written" test -s "$run/samples/step-000003.png" -a -s "$run/samples/step-000006.png"
check "/train/loss_plot_written" test -s "$run/loss.png"
check "/train/checkpoint_written" bash -c "'$celgan' info '$run/checkpoint.safetensors' | grep -q 'celgan.train.step: 6'"
# a first epoch over the style folder meets the corrupt and the small image: warnings, and the run goes on
"$celgan" train "${common[@]}" --out "$tmp/s.safetensors" --steps 2 --warmup 0 --sample-every 0 >"$tmp/skip.log" 2>&1
check "/train/corrupt_image_skipped_with_a_warning" grep -q "warning: skipping.*zz-corrupt.png" "$tmp/skip.log"
check "/train/small_image_skipped_with_a_warning" grep -q "smaller than the 32-pixel crop" "$tmp/skip.log"
check "/train/skipped_images_counted" grep -q "skipped 1 unreadable images and 1 smaller than the crop" "$tmp/skip.log"
# feature matching: an fm weight adds the term (metrics field "fm"); the default leaves it out
check "/train/feature_matching_in_metrics" bash -c "'$celgan' train ${common[*]} --out '$tmp/fm.safetensors' --steps 3 --warmup 1 \
  --weights fm=10 --sample-every 0 --quiet && grep -q '\"tv\":[^,]*,\"fm\":[0-9]' '$tmp/fm.safetensors.train/metrics.jsonl' &&
  ! grep -q '\"fm\"' '$run/metrics.jsonl'"
# warmup_color adds the YUV color loss to the warm-up (metrics "color"; g_total = 1.5 content + 10 color); the
# default warm-up is content alone
check "/train/warmup_color" bash -c "'$celgan' train ${common[*]} --out '$tmp/wc.safetensors' --steps 2 --warmup 2 \
  --weights warmup_color=10 --sample-every 0 --quiet && ! grep -q '\"phase\":\"warmup\",\"content\":[^,]*,\"g_total' '$tmp/wc.safetensors.train/metrics.jsonl' &&
  /usr/bin/python3 -c \"import json,sys; L=[json.loads(l) for l in open(sys.argv[1])]; sys.exit(not all(l['phase'] == 'warmup' and abs(l['g_total'] - 1.5 * l['content'] - 10 * l['color']) <= 1e-5 * l['g_total'] for l in L))\" '$tmp/wc.safetensors.train/metrics.jsonl' &&
  ! grep '\"phase\":\"warmup\"' '$run/metrics.jsonl' | grep -q '\"color\"'"
# --profile: GPU time per shader, then per layer (op and shapes) at the end (timestamps are optional in Vulkan: a
# device without them warns). Any op's row: which layers of this tiny model are the 40 slowest varies (under ASan
# no weight gradient made it once).
check "/train/profile" bash -c "'$celgan' train ${common[*]} --out '$tmp/pr.safetensors' --steps 2 --sample-every 0 --quiet --profile 2>'$tmp/pr.log';
  grep -q 'GPU time per shader' '$tmp/pr.log' && grep -q '^conv2d_fwd' '$tmp/pr.log' && grep -q 'GPU time per op and shapes' '$tmp/pr.log' &&
  grep -qE '%  +[0-9]+  [a-z0-9_]+ \\([0-9, ]+\\) .*-> \\([0-9, ]+\\)\$' '$tmp/pr.log' || grep -q 'no profile' '$tmp/pr.log'"
# --time-limit ends the run early as if --steps were reached (checkpoint, model); --resume goes on from there
check "/train/time_limit_stops" bash -c "'$celgan' train ${common[*]} --out '$tmp/tl.safetensors' --steps 100000 --time-limit 0.001 \
  --sample-every 0 2>'$tmp/tl.log' && grep -q 'time-limit of 0.001s reached at step 1 of 100000' '$tmp/tl.log' &&
  [ \$(wc -l < '$tmp/tl.safetensors.train/metrics.jsonl') -eq 1 ] && '$celgan' info '$tmp/tl.safetensors' | grep -q '\"steps\": 1,' &&
  '$celgan' info '$tmp/tl.safetensors.train/checkpoint.safetensors' | grep -q 'celgan.train.step: 1'"
check "/train/time_limit_resumes" bash -c "'$celgan' train ${common[*]} --out '$tmp/tl.safetensors' --steps 3 --resume --sample-every 0 --quiet &&
  [ \$(wc -l < '$tmp/tl.safetensors.train/metrics.jsonl') -eq 3 ]"
# the same seed gives the same model
check "/train/reproducible" bash -c "'$celgan' train ${common[*]} --out '$tmp/m2.safetensors' --steps 6 --sample-every 3 --quiet &&
  cmp '$tmp/m.safetensors' '$tmp/m2.safetensors'"

# resume: 4 steps == 2 steps + resume + 2 more, bit for bit (model and the whole checkpoint); across the warm-up
# boundary (2) and inside the GAN phase (3 + 1)
"$celgan" train "${common[@]}" --out "$tmp/a.safetensors" --steps 4 --quiet --sample-every 0
"$celgan" train "${common[@]}" --out "$tmp/b.safetensors" --steps 2 --quiet --sample-every 0
check "/train/resume/runs" "$celgan" train "${common[@]}" --out "$tmp/b.safetensors" --steps 4 --resume --quiet --sample-every 0
check "/train/resume/exact_model" cmp "$tmp/a.safetensors" "$tmp/b.safetensors"
check "/train/resume/exact_checkpoint" cmp "$tmp/a.safetensors.train/checkpoint.safetensors" "$tmp/b.safetensors.train/checkpoint.safetensors"
check "/train/resume/metrics_continue" bash -c "[ \$(wc -l < '$tmp/b.safetensors.train/metrics.jsonl') -eq 4 ]"
"$celgan" train "${common[@]}" --out "$tmp/c.safetensors" --steps 3 --quiet --sample-every 0
"$celgan" train "${common[@]}" --out "$tmp/c.safetensors" --steps 4 --resume --quiet --sample-every 0
check "/train/resume/exact_inside_gan_phase" cmp "$tmp/a.safetensors" "$tmp/c.safetensors"

# without --config: the unet configuration (skips, no norms)
check "/train/default_config_is_unet" bash -c "'$celgan' train --photos '$tmp/photos' --styles '$tmp/styles' --crop 32 --batch 1 --warmup 1 \
  --d-width 8 --d-layers 2 --out '$tmp/du.safetensors' --steps 1 --sample-every 0 --quiet &&
  '$celgan' info '$tmp/du.safetensors' | grep -q '\"skips\": 1' && '$celgan' info '$tmp/du.safetensors' | grep -q '\"norm\": \"none\"'"
# --d-luma: no d_gray term in the metrics, the checkpoint and the model say so; it may change after a warm-up
# checkpoint (D untrained) but not after a GAN one (the loss parity is tests/oracle/torch_train.py --d-luma)
check "/train/d_luma/runs" "$celgan" train "${common[@]}" --out "$tmp/l.safetensors" --steps 3 --d-luma --quiet --sample-every 0
check "/train/d_luma/no_gray_term" bash -c "grep -q '\"phase\":\"gan\".*\"d_blur\"' '$tmp/l.safetensors.train/metrics.jsonl' &&
  ! grep -q '\"d_gray\"' '$tmp/l.safetensors.train/metrics.jsonl' && grep -q '\"d_gray\"' '$run/metrics.jsonl'"
check "/train/d_luma/recorded" bash -c "'$celgan' info '$tmp/l.safetensors.train/checkpoint.safetensors' | grep -q 'celgan.train.d_luma: 1' &&
  '$celgan' info '$tmp/l.safetensors' | grep -q '\"d_input\": \"luma\"' && '$celgan' info '$tmp/m.safetensors' | grep -q '\"d_input\": \"rgb\"'"
expect_fail "/train/d_luma/resume_must_match" 2 "trained with --d-luma" "$celgan" train "${common[@]}" --out "$tmp/l.safetensors" --steps 4 --resume
"$celgan" train "${common[@]}" --out "$tmp/lw.safetensors" --steps 2 --quiet --sample-every 0
check "/train/d_luma/after_the_warm_up" "$celgan" train "${common[@]}" --out "$tmp/lw.safetensors" --steps 3 --resume --d-luma --quiet --sample-every 0
expect_fail "/train/d_luma/not_reference_guided" 2 "not --reference-guided" "$celgan" train "${common[@]}" --config reference-gan --reference-guided --d-luma --out "$tmp/lr.safetensors" --steps 1

# bad inputs
expect_fail "/train/errors/empty_folder" 5 "no PNG or JPEG images" "$celgan" train "${common[@]}" --photos "$tmp/empty" --out "$tmp/e.safetensors" --steps 1
expect_fail "/train/errors/missing_folder" 5 "cannot read the folder" "$celgan" train "${common[@]}" --styles "$tmp/nope" --out "$tmp/e.safetensors" --steps 1
expect_fail "/train/errors/only_unreadable_images" 5 "no usable image.*1 unreadable" "$celgan" train "${common[@]}" --styles "$tmp/bad" --out "$tmp/e2.safetensors" --steps 1
expect_fail "/train/errors/crop_larger_than_every_image" 5 "smaller than the 64-pixel crop" "$celgan" train "${common[@]}" --crop 64 --out "$tmp/e3.safetensors" --steps 1
expect_fail "/train/errors/unwritable_output" 5 "cannot create the folder" "$celgan" train "${common[@]}" --out "/proc/celgan-test.safetensors" --steps 1
expect_fail "/train/errors/missing_output_folder" 5 "cannot write the model" "$celgan" train "${common[@]}" --out "$tmp/no/such/m.safetensors" --steps 1
expect_fail "/train/errors/existing_checkpoint_needs_resume" 2 "add --resume" "$celgan" train "${common[@]}" --out "$tmp/m.safetensors" --steps 1
expect_fail "/train/errors/resume_without_checkpoint" 5 "no checkpoint" "$celgan" train "${common[@]}" --out "$tmp/r.safetensors" --steps 1 --resume
expect_fail "/train/errors/unknown_config" 2 "no configuration" "$celgan" train "${common[@]}" --config nosuchconfig --out "$tmp/u.safetensors" --steps 1
expect_fail "/train/errors/bad_weights" 2 "weights" "$celgan" train "${common[@]}" --weights "nope=1" --out "$tmp/w.safetensors" --steps 1
expect_fail "/train/errors/missing_arguments" 2 "needs" "$celgan" train --photos "$tmp/photos"
expect_fail "/train/errors/bad_vgg_file" 5 "cannot\|truncated\|not VGG19" "$celgan" train "${common[@]}" --vgg "$tmp/tiny.json" --out "$tmp/v.safetensors" --steps 3
# a loss that becomes infinite stops the run with exit 7 and keeps the checkpoint of step 2
expect_fail "/train/errors/diverged_stops" 7 "diverged" "$celgan" train "${common[@]}" --weights "adv_d=1e38,d_real=1e38" --checkpoint-every 2 --out "$tmp/nan.safetensors" --steps 4
check "/train/errors/diverged_kept_the_checkpoint" bash -c "'$celgan' info '$tmp/nan.safetensors.train/checkpoint.safetensors' | grep -q 'celgan.train.step: 2'"
ok "$(ls -a "$tmp" "$run" | grep -c '\.tmp' | grep -q '^0$' && echo 0 || echo 1)" "/train/no_temporary_files_left"
echo "1..$n"
[ $failed -eq 0 ]
