"""`reorg-tui bench`: how fast the engine is, measured in the same run as what it is compared with.

Speed is reported as a ratio to a raw loop measured minutes apart on the same machine, never as
an absolute number: machines (and their neighbours) differ. One module per mode:

- backlog:   a raw rename (or copy) loop, then `reorg-tui --once`, on the same workload; a table
- stream:    files arriving at a steady rate into a running daemon (--watch); their latency
- idle:      a running daemon with nothing to do over a large folder (--idle); its CPU
- dashboard: the real dashboard under a stream (--dashboard); refreshes and key latency
- quarantine: `quarantine list` over a large quarantine (--quarantine), with the ledger and without
- browser:   the dashboard's quarantine browser over a large quarantine (--browser); opening, keys

and what they share: workload (the files), feeder (the writer process), daemon (starting
reorg-tui and reading its JSON log), report (the figures, and BenchFailed when there are none).
"""
