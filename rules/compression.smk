rule compression:
    input:
        unpack(all_task_tables),
        corpus=world_tables()["pretrain"],
        pretrain_heldout=world_tables()["pretrain_heldout"],
        base=compression_base,
    output:
        compressors=report(
            "results/{study}/tables/compressors.csv",
            caption="../report/compressors.rst",
            category="Compression",
        ),
        pareto=report(
            "results/{study}/tables/pareto.csv",
            caption="../report/pareto.rst",
            category="Compression",
        ),
        ideal=report(
            "results/{study}/tables/ideal.csv",
            caption="../report/ideal.rst",
            category="Compression",
        ),
        ranks="results/{study}/tables/rank_frequency.csv",
        documents="results/{study}/compression/documents.csv",
    params:
        code=code_hash("compression"),
        compression=config["compression"],
        rebound={k: REBOUND[k] for k in ("tasks", "seeds", "n_pos", "n_neg", "lr", "loss", "batch_size")},
        context=config["evaluate"]["context"],
        tokens=lambda wildcards: BASES[0]["tokens"],
    log:
        "results/{study}/logs/compression.log",
    benchmark:
        "results/{study}/benchmarks/compression.tsv"
    threads: job_threads()
    resources:
        mem_mb=scaled_mem(4000),
        runtime=60,
    conda:
        "../envs/springback.yaml"
    script:
        "../workflow/scripts/compression.py"
