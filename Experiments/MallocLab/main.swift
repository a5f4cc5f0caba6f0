// malloc-lab: see Experiments/MallocLabCLI/Commands.swift and docs/experiments.md.
import MallocLabCLI

MallocLab.main()
