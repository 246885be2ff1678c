"""Reviews: the instruments each route produces (SJR, M&M, LeDeR, external), and what a
submitted review sets off next."""
