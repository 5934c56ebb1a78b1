"""`pbox audit`: the auditor's GB/T 22239-2019 level-3 report over every host of an inventory."""
