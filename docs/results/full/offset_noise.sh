#!/usr/bin/env bash
# Which non-ideality brings the full-data W4A4 model (87.32% digital, 83.48% on an ideal 7-bit
# bit-serial PIM) to chance? One at a time at IR = 7: the offset spread sigma_o (no noise), then
# thermal noise sigma (no offsets); gain spread 0.024 throughout, 2 dies, 10 BN calibration
# batches, 2 000 test images. Outputs: runs/meas/w4a4-offset-*.txt, w4a4-noise-*.txt.
cd "$(dirname "$0")/../../.."
export OMP_WAIT_POLICY=PASSIVE
P=${PIMQAT:-./build/release/pimqat}
common=(--checkpoint runs/meas/w4a4/checkpoint.h5 --config runs/meas/w4a4-pim.yaml --set eval.infer_bits=7
        --dies 2 --set eval.gain_sigma=0.024 --set eval.bn_calibration=10 --set dataset.test_subset=2000
        --threads ${THREADS:-1})
for o in 0 0.25 0.5 1 2.04; do
  $P eval "${common[@]}" --set eval.offset_sigma=$o --out runs/meas/w4a4-offset-$o.h5 > runs/meas/w4a4-offset-$o.txt 2>&1
done
for s in 0.125 0.25 0.5 1; do
  $P eval "${common[@]}" --set eval.noise_sigma=$s --out runs/meas/w4a4-noise-$s.h5 > runs/meas/w4a4-noise-$s.txt 2>&1
done
