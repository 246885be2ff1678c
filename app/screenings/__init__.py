"""Medical examiner screenings: intake, the referral rules, amendments."""
