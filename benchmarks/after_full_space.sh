#!/usr/bin/env bash
# Every result that waits for the full-space table of ensemble:zcnas's components (issues 18
# and 16), in order. Each step's command and wall time go to results/after-full-space.log; a
# step whose output exists is skipped, so the script can be re-run after an interruption.
#
#     ZCNAS_DATA=../shared/data bash benchmarks/after_full_space.sh
#
# 1. table   the scores of all 15,625 cells (6,466 distinct), read back from the score store
#            that `zcnas score` filled (computing whatever is missing: about 4.5 h with 2
#            workers on the 2-core CPU), written to results/scores/tss-cifar10-zcnas-full:
#            ensemble:zcnas's components, plus flops and params (analytic counts, seconds for
#            the whole space), so that the AZ-NAS preset is measured over the whole space too
#            (AZ-NAS published its numbers over all 15,625 cells);
# 2. correl  Spearman and Kendall of every column and of both ensembles against all three
#            datasets, 200 bootstrap resamples: results/correlations/tss-full-zcnas/;
# 3. search  results/search/ regenerated with the default fitness (ensemble:zcnas, its stored
#            costs charged), both protocols of results/search/README.md (all methods; mfea
#            with the final-choice rule not chosen, fused);
# 4. study   the supernet ranking study with the top region = the ensemble's best 100 cells of
#            the whole space, two supernet seeds side by side (one torch thread each), then the
#            seeds' table and the tau-vs-time plot: results/supernet/study-full-*.
set -euo pipefail
cd "$(dirname "$0")/.."
: "${ZCNAS_DATA:?set ZCNAS_DATA to the reference data folder}"
DATA=$ZCNAS_DATA
ZC=${ZC:-.venv/bin/zcnas}
PY=${PY:-.venv/bin/python}
WORKERS=${WORKERS:-2}
LOG=results/after-full-space.log
COMPONENTS=meco,stable,jacov,gradsign,az_expressivity,az_progressivity,az_trainability
EXTRA=flops,params
TABLE=${TABLE:-results/scores/tss-cifar10-zcnas-full}
STEPS=${STEPS:-"table correl search study"}

run() {  # run NAME DONE-FILE CMD...: skip when DONE-FILE exists; log the command and its time
    local name=$1 done=$2
    shift 2
    if [ -e "$done" ]; then
        echo "$name: $done exists, skipped"
        return
    fi
    echo "$name: $*"
    local start=$SECONDS
    "$@"
    printf '%s\t%s s\t%s\n' "$name" "$((SECONDS - start))" "$*" >> "$LOG"
}

for step in $STEPS; do
    case $step in
    table)
        run table "$TABLE.parquet" "$ZC" score --space nats-tss --proxies "$COMPONENTS,$EXTRA" \
            --archs all --data "$DATA" --workers "$WORKERS" --no-progress --out "$TABLE" ;;
    correl)
        run correl results/correlations/tss-full-zcnas/correlations.md "$ZC" correlate \
            "$TABLE.parquet" --data "$DATA" \
            --proxies "all,ensemble:zcnas,ensemble:az_nas" --bootstrap 200 \
            --out results/correlations/tss-full-zcnas ;;
    search)
        # the checkpoints of the stand-in fitness's runs belong to another configuration
        if [ ! -e results/search/.default-fitness ]; then
            rm -rf results/search/tss/runs results/search/tss-mfea-select-fused/runs
        fi
        run search-tss results/search/.default-fitness-tss "$ZC" search --data "$DATA" \
            --dataset cifar10,cifar100,ImageNet16-120 --method all --seeds 30 \
            --workers "$WORKERS" --proxy-dataset cifar10 --out results/search/tss
        touch results/search/.default-fitness-tss
        run search-fused results/search/.default-fitness-fused "$ZC" search --data "$DATA" \
            --dataset cifar10,cifar100,ImageNet16-120 --method mfea --select fused --seeds 30 \
            --workers "$WORKERS" --proxy-dataset cifar10 \
            --out results/search/tss-mfea-select-fused
        touch results/search/.default-fitness-fused results/search/.default-fitness ;;
    study)
        for seed in 0 1; do
            if [ ! -e "results/supernet/study-full-c8n1-s$seed.md" ]; then
                "$PY" -m benchmarks.supernet_study --data "$DATA" --scores "$TABLE.parquet" \
                    --out "results/supernet/study-full-c8n1-s$seed" --channels 8 --cells 1 \
                    --epochs 120 --checkpoints 10,20,30,50,80,120 --finetune-epochs 10 \
                    --seed "$seed" > "results/supernet/study-full-c8n1-s$seed.log" 2>&1 &
            fi
        done
        start=$SECONDS
        wait
        printf 'study\t%s s\tsupernet_study --scores %s, seeds 0 and 1 side by side\n' \
            "$((SECONDS - start))" "$TABLE.parquet" >> "$LOG"
        "$PY" -m benchmarks.supernet_study --combine results/supernet/study-full-c8n1-s0 \
            results/supernet/study-full-c8n1-s1 --out results/supernet/study-full-c8n1-seeds.md
        "$PY" -m benchmarks.supernet_study --plot results/supernet/study-full-c8n1-s0.csv \
            results/supernet/study-full-c8n1-s1.csv --out results/supernet/study-full-c8n1-tau.png ;;
    *)
        echo "unknown step $step"
        exit 2 ;;
    esac
done
