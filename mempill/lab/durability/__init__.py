"""The durability lab: kill the writer or cut the power under the store, then check it.

`crash` is the command (`python -m mempill.lab crash`); `trials` runs one trial of a
configuration; `workload`, `writer` and `check` are the claims written, the writer process
and the checks after recovery; `mount`, `powerfs`, `overlay`, `backing` (paths that never
leave the backing directory) and `fusedev` (a mount for one user) are the FUSE power-cut
layer, and `models` the crash models its cut applies (power-loss, reorder, torn-write,
lost-dirent, fsync-error); `postgres` runs PostgreSQL clusters; `procs` process helpers;
`report` the tables and figures; `threaded` the multi-threaded trials (N writer threads on
one Engine, M agents). `states` (`python -m mempill.lab crash-states`) checks every crash
state a persistence model allows, from a strace recording (`recorder`) replayed into
images (`images`).
"""
