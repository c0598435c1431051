# The elasticity report card of released (base, aligned) pairs (config `pairs`, hub mode): no
# alignment; the base and the released aligned model are each perturbed on D_t along
# rebound.n_neg, one GPU job per pair x task x fine-tuning seed, then one card per pair.
localrules:
    fetch_pair,


rule fetch_pair:
    output:
        model=directory("results/{study}/pairs/{pair}/models/{model}"),
    params:
        code=code_hash("fetch_pair"),
        model=lookup(dpath="pairs/{pair}/{model}", within=config),
    log:
        "results/{study}/logs/pairs/{pair}/models/{model}.log",
    benchmark:
        "results/{study}/benchmarks/pairs/{pair}/models/{model}.tsv"
    retries: 3
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=120,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/fetch_pair.py"


rule pair:
    input:
        unpack(job_judge_dir),
        **task_tables(REBOUND["tasks"]),
        base="results/{study}/pairs/{pair}/models/base",
        aligned="results/{study}/pairs/{pair}/models/aligned",
        pretrain_heldout=world_tables()["pretrain_heldout"],
    output:
        metrics="results/{study}/pairs/{pair}/{task}/seed-{seed}/metrics.csv",
        prompts="results/{study}/pairs/{pair}/{task}/seed-{seed}/prompts.parquet",
    params:
        code=code_hash("pair"),
        direction=lookup(dpath="pairs/{pair}/direction", within=config),
        n_neg=REBOUND["n_neg"],
        train=REGIME,
        adapter=REBOUND["adapter"],
        trainer=REBOUND["trainer"],
        checkpointing=REBOUND["checkpointing"],
        evaluate=config["evaluate"],
        judges=HUB["judges"],
        runtime=RUN["model"],
    log:
        "results/{study}/logs/pairs/{pair}/{task}/seed-{seed}.log",
    benchmark:
        "results/{study}/benchmarks/pairs/{pair}/{task}/seed-{seed}.tsv"
    threads: RUN["threads"]
    resources:
        mem_mb=scaled_mem(RUN["mem_mb"]),
        runtime=RUN["runtime"],
        gpu=RUN["gpu"],
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/pair.py"


rule pair_card:
    input:
        metrics=pair_job_outputs("metrics.csv"),
        prompts=pair_job_outputs("prompts.parquet"),
    output:
        card=report(
            "results/{study}/pairs/{pair}/card.csv",
            caption="../report/pair_card.rst",
            category="Pairs",
            subcategory="{pair}",
        ),
        curves="results/{study}/pairs/{pair}/curves.csv",
        figure=report(
            expand("results/{{study}}/pairs/{{pair}}/card.{ext}", ext=["png", "pdf"]),
            caption="../report/pair_figure.rst",
            category="Pairs",
            subcategory="{pair}",
        ),
    params:
        code=code_hash("pair_card"),
        claims=config["claims"],
        n_boot=config["evaluate"]["bootstrap"],
    log:
        "results/{study}/logs/pairs/{pair}/card.log",
    benchmark:
        "results/{study}/benchmarks/pairs/{pair}/card.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/pair_card.py"


# `snakemake pairs`: only the cards (and what they need), without the rebound study.
rule pairs:
    input:
        pair_files(STUDY),
