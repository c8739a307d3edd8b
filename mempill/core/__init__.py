"""The pure core: values, canonical encoding, dates, parsing, the write rules and the fold.

Nothing here does I/O, reads a clock or an environment variable. `decide` holds the write
rules (reference §4), `fold` the read fold (§5); `view`, `line`, `windows` and `linestate`
describe a line's claims as both see them; `model`, `enums` and `config` are the vocabulary.
"""
