# Fetch and adapt on the submit host: compute nodes of many clusters have no internet.
localrules:
    hub_data,
    fetch_base,
    fetch_judge,


rule hub_data:
    output:
        **world_tables(),
    params:
        code=code_hash("hub_data"),
        datasets=HUB["datasets"],
        pretrain_text=HUB["pretrain_text"],
        sizes=HUB["sizes"],
        seed=HUB["seed"],
        tasks=REBOUND["tasks"],
    log:
        "results/{study}/logs/hub_data.log",
    benchmark:
        "results/{study}/benchmarks/hub_data.tsv"
    retries: 3
    threads: 1
    resources:
        mem_mb=scaled_mem(16000),
        runtime=60,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/hub_data.py"


rule fetch_base:
    output:
        models=directory("results/{study}/base/{world}/{size}/pseed-{pseed}"),
    params:
        code=code_hash("fetch_base"),
        model=hub_model,
        tokens=hub_checkpoints,
    log:
        "results/{study}/logs/base/{world}/{size}/pseed-{pseed}.log",
    benchmark:
        "results/{study}/benchmarks/base/{world}/{size}/pseed-{pseed}.tsv"
    retries: 3
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=120,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/fetch_base.py"


rule fetch_judge:
    output:
        directory("results/{study}/judges/{task}"),
    params:
        code=code_hash("fetch_judge"),
        judge=hub_judge,
    log:
        "results/{study}/logs/judges/{task}.log",
    retries: 3
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=120,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/fetch_judge.py"
