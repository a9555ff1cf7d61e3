"""Collections (代收, SPEC 16): debits of payers' cards into accounts, through the banks."""
