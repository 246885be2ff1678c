"""Review programmes (issue 17): a clinical audit of deaths, from its cohort to its report."""
