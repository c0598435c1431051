rule aggregate:
    input:
        metrics=rebound_metrics,
        prompts=rebound_prompts,
        ladder=rules.evaluate_ladder.output.metrics,
    output:
        checkpoints=report(
            "results/{study}/tables/checkpoints.csv",
            caption="../report/checkpoints.rst",
            category="Tables",
        ),
        curves=report(
            "results/{study}/tables/curves.csv",
            caption="../report/curves.rst",
            category="Tables",
        ),
    params:
        code=code_hash("tables", "stats"),
        tasks=REBOUND["tasks"],
        n_boot=config["evaluate"]["bootstrap"],
    log:
        "results/{study}/logs/aggregate.log",
    benchmark:
        "results/{study}/benchmarks/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule figures:
    input:
        checkpoints=rules.aggregate.output.checkpoints,
        curves=rules.aggregate.output.curves,
    output:
        rebound=report(
            expand("results/{{study}}/figures/rebound_{task}.{ext}", task=REBOUND["tasks"], ext=["png", "pdf"]),
            caption="../report/rebound.rst",
            category="Rebound",
        ),
        compression=report(
            expand("results/{{study}}/figures/compression_{task}.{ext}", task=REBOUND["tasks"], ext=["png", "pdf"]),
            caption="../report/compression.rst",
            category="Compression",
        ),
        two_phase=report(
            expand("results/{{study}}/figures/two_phase_{task}.{ext}", task=REBOUND["tasks"], ext=["png", "pdf"]),
            caption="../report/two_phase.rst",
            category="Rebound",
        ),
        kl=report(
            expand("results/{{study}}/figures/kl_rebound.{ext}", ext=["png", "pdf"]),
            caption="../report/kl_plot.rst",
            category="Rebound",
        ),
        ladder=report(
            expand("results/{{study}}/figures/ladder.{ext}", ext=["png", "pdf"]),
            caption="../report/ladder.rst",
            category="Pretraining",
        ),
    params:
        code=code_hash("plots", "stats"),
        tasks=REBOUND["tasks"],
        epsilon=config["claims"]["kl_epsilon"],
        metric=config["claims"]["metric"],
    log:
        "results/{study}/logs/figures.log",
    benchmark:
        "results/{study}/benchmarks/figures.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figures.py"


rule claims:
    input:
        checkpoints=rules.aggregate.output.checkpoints,
        metrics=rebound_metrics,
        prompts=rebound_prompts,
    output:
        claims=report(
            "results/{study}/claims.csv",
            caption="../report/claims.rst",
            category="1. Claims",
        ),
        elasticity=report(
            "results/{study}/tables/elasticity.csv",
            caption="../report/elasticity.rst",
            category="Tables",
        ),
        kl=report(
            "results/{study}/tables/kl_rebound.csv",
            caption="../report/kl_rebound.rst",
            category="Tables",
        ),
        recovery=report(
            "results/{study}/tables/recovery.csv",
            caption="../report/recovery.rst",
            category="Tables",
        ),
    params:
        code=code_hash("claims", "tables", "stats"),
        claims=config["claims"],
        n_boot=config["evaluate"]["bootstrap"],
    log:
        "results/{study}/logs/claims.log",
    benchmark:
        "results/{study}/benchmarks/claims.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/claims.py"


rule manifest:
    input:
        claims=rules.claims.output,
        figures=rules.figures.output,
        tables=rules.aggregate.output,
    output:
        "results/{study}/manifest.json",
    params:
        code=code_hash("provenance"),
        root=study_root,
    log:
        "results/{study}/logs/manifest.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/manifest.py"
