"""`prunecard collection`: analyze (and audit, and report on) every model of a list, on this
machine's cores or on a Ray cluster, into one folder of records and one site.

    listing.py    the LIST file (or a Hub author's models): bounded, validated entries
    records.py    the typed records: one per model folder, the collection.json summary
    work.py       one model, start to end, in whichever process runs it: records come back
    executors.py  where the models run: in this process, a process pool, or Ray tasks
    verdicts.py   the site's page of audit verdicts
    run.py        the run: resume, results kept as they arrive, the summary, the site
"""
