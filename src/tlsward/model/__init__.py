"""Ring 0: pure data types shared by every other ring. Standard library only; no I/O, no clock."""
