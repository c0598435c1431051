rule world:
    output:
        **world_tables(),
    params:
        code=code_hash("world"),
        world=config["world"],
    log:
        "results/{study}/logs/world.log",
    benchmark:
        "results/{study}/benchmarks/world.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=10,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/world.py"


rule world_corpus:
    output:
        **world_files("{world}"),
    params:
        code=code_hash("world_corpus"),
        world=config["world"],
        mirror=lookup(dpath="{world}/mirror", within=WORLDS),
        prior=lookup(dpath="{world}/prior", within=WORLDS),
    log:
        "results/{study}/logs/world/{world}.log",
    benchmark:
        "results/{study}/benchmarks/world/{world}.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=10,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/world_corpus.py"


rule tokenizer:
    input:
        corpus=rules.world.output.pretrain,
    output:
        directory("results/{study}/tokenizer"),
    params:
        code=code_hash("tokenizer"),
    log:
        "results/{study}/logs/tokenizer.log",
    benchmark:
        "results/{study}/benchmarks/tokenizer.tsv"
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=10,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/tokenizer.py"
