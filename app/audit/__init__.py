"""The audit log: every read and write of patient-identifiable data leaves a row."""
