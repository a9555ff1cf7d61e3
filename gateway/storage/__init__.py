"""Storage: embedded servers, migrations, pools."""
