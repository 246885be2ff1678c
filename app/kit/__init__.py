"""What every domain shares: enums, NHS numbers, pagination, ETags, base schemas, time."""
