# Fetch and adapt on the submit host: compute nodes of many clusters have no internet.
localrules:
    hub_data,
    fetch_base,
    fetch_judge,


rule hub_data:
    output:
        **world_tables(),
        sources=expand("results/{{study}}/world/{task}/source.json", task=REBOUND["tasks"]),
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
        models=directory(base_model({"world": "hub", "size": "{size}", "pseed": 0})),
    params:
        code=code_hash("fetch_base"),
        model=lookup(dpath="hub/models/{size}", within=config),
        checkpoints=ladder_checkpoints,
    log:
        "results/{study}/logs/base/hub/{size}/pseed-0.log",
    benchmark:
        "results/{study}/benchmarks/base/hub/{size}/pseed-0.tsv"
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
        judge=lookup(dpath="hub/judges/{task}", within=config),
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
