/* mmsegmentation's Semantic FPN (the FPN neck and FPNHead), shared by the VAN and DiNAT
 * segmenters: four backbone feature maps at strides 4, 8, 16, 32 become class logits at
 * stride 4. Tensor names are those of mmsegmentation checkpoints, under "neck." and
 * "decode_head." (BatchNorm folded into the convolutions at open). */
#ifndef SEG_RUN_FPN_H
#define SEG_RUN_FPN_H

#include "longrange/core.h"
#include "longrange/model.h"

typedef struct seg_fpn seg_fpn;

/* in_channels: the backbone's four stage widths. The neck width, head channels and number
 * of classes come from the tensors' shapes, all validated (LR_ERR_MODEL naming the tensor). */
lr_status seg_fpn_open(lr_ctx *ctx, const lr_model *file, const int in_channels[4],
                       seg_fpn **out);
int seg_fpn_classes(const seg_fpn *f);
/* feats[i]: [in_channels[i]][h[i]][w[i]]; out: [classes][h[0]][w[0]] logits. */
lr_status seg_fpn_forward(lr_ctx *ctx, const seg_fpn *f, const float *const feats[4],
                          const int h[4], const int w[4], float *out);
void seg_fpn_close(seg_fpn *f);

#endif
