"""The AVSDN paper's tables: what each row trains, the reported numbers, the results files."""
