"""`perceus node reprovision` (issue 19): running nodes kexec back into stage one, in health-gated batches."""
