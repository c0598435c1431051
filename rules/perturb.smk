rule perturb:
    input:
        unpack(all_task_tables),
        base=base_models,
        aligned=rules.align.output.models,
    output:
        models=directory("results/{study}/perturb/{size}/tokens-{tokens}"),
    params:
        code=code_hash("models", "train", "data", "provenance", "pipeline/finetune"),
        runtime=model_runtime(),
        phase=phase_settings(2),
    log:
        "results/{study}/logs/perturb/{size}/tokens-{tokens}.log",
    benchmark:
        "results/{study}/benchmarks/perturb/{size}/tokens-{tokens}.tsv"
    threads: 2
    resources:
        mem_mb=job_mem(6000),
        runtime=job_runtime(240),
        gpu=gpus(),
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/perturb.py"
