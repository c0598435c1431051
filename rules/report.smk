rule aggregate:
    input:
        metrics=rebound_outputs("metrics.csv"),
        prompts=rebound_outputs("prompts.parquet"),
        ladder=rules.evaluate_ladder.output.metrics,
    output:
        checkpoints=report(
            "results/{study}/tables/checkpoints.csv",
            caption="../report/checkpoints.rst",
            category="Tables",
        ),
        prompts=report(
            "results/{study}/tables/prompts.parquet",
            caption="../report/prompts.rst",
            category="Tables",
        ),
        curves=report(
            "results/{study}/tables/curves.csv",
            caption="../report/curves.rst",
            category="Tables",
        ),
    params:
        code=code_hash("aggregate"),
        roles=base_roles(),
        n_boot=config["evaluate"]["bootstrap"],
        metric=config["claims"]["metric"],
    log:
        "results/{study}/logs/aggregate.log",
    benchmark:
        "results/{study}/benchmarks/aggregate.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/aggregate.py"


rule claims:
    input:
        checkpoints=rules.aggregate.output.checkpoints,
        prompts=rules.aggregate.output.prompts,
        resistance=resistance_tables,
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
        runs=report(
            "results/{study}/tables/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
        ),
        regime=report(
            "results/{study}/tables/regime.csv",
            caption="../report/regime.rst",
            category="2. Regime",
        ),
        trends=report(
            "results/{study}/tables/trends.csv",
            caption="../report/trends.rst",
            category="Tables",
        ),
        resistance=report(
            "results/{study}/tables/resistance.csv",
            caption="../report/resistance.rst",
            category="Tables",
        ),
        resistance_summary=report(
            "results/{study}/tables/resistance_summary.csv",
            caption="../report/resistance_summary.rst",
            category="Tables",
        ),
        theorem=report(
            "results/{study}/tables/theorem.csv",
            caption="../report/theorem.rst",
            category="Tables",
        ),
        findings=report(
            "results/{study}/findings.md",
            caption="../report/findings.rst",
            category="1. Claims",
        ),
    params:
        code=code_hash("claims"),
        claims=config["claims"],
        n_boot=config["evaluate"]["bootstrap"],
    log:
        "results/{study}/logs/claims.log",
    benchmark:
        "results/{study}/benchmarks/claims.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/claims.py"


rule table_figures:
    input:
        checkpoints=rules.aggregate.output.checkpoints,
        curves=rules.aggregate.output.curves,
        compression=compression_tables(),
    output:
        compression=report(
            expand("results/{{study}}/figures/compression_{task}.{ext}", task=REBOUND["tasks"], ext=["png", "pdf"]),
            caption="../report/compression.rst",
            category="Compression",
        ),
        cue_gap=report(
            expand("results/{{study}}/figures/cue_gap.{ext}", ext=["png", "pdf"]),
            caption="../report/cue_gap.rst",
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
        trends=report(
            expand("results/{{study}}/figures/{name}.{ext}", name=trend_figures("tables"), ext=["png", "pdf"]),
            caption="../report/trend_figures.rst",
            category="Size, volume and resistance",
        ),
    params:
        code=code_hash("figures"),
        tasks=REBOUND["tasks"],
        kind="tables",
    log:
        "results/{study}/logs/table_figures.log",
    benchmark:
        "results/{study}/benchmarks/table_figures.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../envs/plot.yaml"
    script:
        "../workflow/scripts/figures.py"


rule figures:
    input:
        checkpoints=rules.aggregate.output.checkpoints,
        curves=rules.aggregate.output.curves,
        elasticity=rules.claims.output.elasticity,
        trends=rules.claims.output.trends,
        resistance_summary=rules.claims.output.resistance_summary,
        theorem=rules.claims.output.theorem,
        claims=rules.claims.output.claims,
    output:
        rebound=report(
            expand("results/{{study}}/figures/rebound_{task}.{ext}", task=REBOUND["tasks"], ext=["png", "pdf"]),
            caption="../report/rebound.rst",
            category="Rebound",
        ),
        trends=report(
            expand("results/{{study}}/figures/{name}.{ext}", name=trend_figures("claims"), ext=["png", "pdf"]),
            caption="../report/trend_figures.rst",
            category="Size, volume and resistance",
        ),
    params:
        code=code_hash("figures"),
        tasks=REBOUND["tasks"],
        kind="claims",
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


rule manifest:
    input:
        claims=rules.claims.output,
        figures=rules.figures.output,
        table_figures=rules.table_figures.output,
        tables=rules.aggregate.output,
        pairs=pair_reports,
    output:
        "results/{study}/manifest.json",
    params:
        code=code_hash("manifest"),
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
