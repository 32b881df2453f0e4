from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("authgear_django", "0004_webhook_ordering"),
    ]

    operations = [
        migrations.AddField(
            model_name="authgearlogin",
            name="id_token_unverified_since",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="ID token unverified since"
            ),
        ),
    ]
