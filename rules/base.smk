rule pretrain:
    input:
        corpus=rules.world.output.pretrain,
        tokenizer=rules.tokenizer.output[0],
    output:
        models=directory("results/{study}/base/{size}"),
    params:
        code=code_hash("models", "train", "data", "provenance", "pipeline/base"),
        arch=arch_of,
        train=pretrain_settings(),
        tokens=budget_of,
        ladder=ladder_of,
    log:
        "results/{study}/logs/base/{size}.log",
    benchmark:
        "results/{study}/benchmarks/base/{size}.tsv"
    threads: 2
    resources:
        mem_mb=scaled_mem(6000),
        runtime=120,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/pretrain.py"
