"""Death notifications: a trust system tells the service that a patient died, before the
medical examiner's screening; the ME office's worklist of deaths awaiting scrutiny."""
