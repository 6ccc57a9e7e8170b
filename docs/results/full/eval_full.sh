#!/usr/bin/env bash
# Issue 3 closing measurements on the full-data W4A4 digital-QAT model (runs/meas/w4a4):
# (1) ideal bit-serial PIM (N = 144) at IR 3..8; (2) 8 non-ideal dies at IR 7 (paper chip's
# gain/offset spreads, no thermal noise), BN calibration off vs 20 batches.
cd /work/main
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=${THREADS:-1}
P=./build-run/pimqat
cfg=runs/meas/w4a4-pim.yaml
cat runs/meas/fmnist-w4a4.yaml > $cfg
echo 'pim: {enabled: false, scheme: bit-serial, rows: 144}' >> $cfg
for ir in 3 4 5 6 7 8; do
  $P eval --checkpoint runs/meas/w4a4/checkpoint.h5 --config $cfg --set eval.infer_bits=$ir --dies 1 \
    --out runs/meas/w4a4-ideal-ir$ir.h5 --threads ${THREADS:-1} > runs/meas/w4a4-ideal-ir$ir.txt 2>&1
done
for cal in 0 20; do
  $P eval --checkpoint runs/meas/w4a4/checkpoint.h5 --config $cfg --set eval.infer_bits=7 --dies 8 \
    --set eval.gain_sigma=0.024 --set eval.offset_sigma=2.04 --set eval.bn_calibration=$cal \
    --out runs/meas/w4a4-nonideal-cal$cal.h5 --threads ${THREADS:-1} > runs/meas/w4a4-nonideal-cal$cal.txt 2>&1
done
