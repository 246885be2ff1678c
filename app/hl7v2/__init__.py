"""HL7 v2 ADT death notifications (A03 discharge with a death disposition, A08 update with a
date of death), over HTTP and MLLP: an adapter onto app.notifications."""
