"""Pure loan rules (DOMAIN.md §4: 004 §3(2), 004 §5.4-5.6): schedules and interest, repayment,
ageing and classification, close of business, and the red and black lists' effect on a loan."""
